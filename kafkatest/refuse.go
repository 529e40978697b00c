package kafkatest

import "github.com/twmb/franz-go/pkg/kmsg"

// RefusedProduce is the answer to r that refuses every partition it
// writes with the error code, for kfake's ControlKey (an ACL that denies
// a topic, a broker that fails the write).
func RefusedProduce(r *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
