package statestore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestEnsureChangelog(t *testing.T) {
	adm := kadm.NewClient(newClient(t, newCluster(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cases := []struct {
		name string
		// existing topic, if any: partitions and cleanup.policy ("" for
		// the broker's default)
		exists     bool
		partitions int32
		policy     string
		// cacheMiss asks kadm about the topic before it exists, so its
		// metadata cache holds "unknown topic".
		cacheMiss bool
		wantErr   []string // substrings of the error; nil for success
	}{
		{name: "missing topic is created compacted"},
		{name: "existing compacted topic", exists: true, partitions: 3, policy: "compact"},
		{name: "existing compact,delete topic", exists: true, partitions: 3, policy: "compact,delete"},
		{name: "existing topic behind a cached unknown", exists: true, partitions: 3, policy: "compact", cacheMiss: true},
		{
			name: "wrong partition count", exists: true, partitions: 2, policy: "compact",
			wantErr: []string{"has 2 partitions, needs 3", "delete the topic"},
		},
		{
			name: "delete policy", exists: true, partitions: 3, policy: "delete",
			wantErr: []string{"cleanup.policy=delete, needs compact", "--add-config cleanup.policy=compact"},
		},
		{
			name: "default policy", exists: true, partitions: 3,
			wantErr: []string{"cleanup.policy=delete, needs compact"},
		},
		{
			name: "every problem at once", exists: true, partitions: 5, policy: "delete",
			wantErr: []string{"has 5 partitions, needs 3", "cleanup.policy=delete, needs compact"},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := "pipe-node" + string(rune('a'+i)) + "-changelog"
			if tc.cacheMiss {
				if d, err := adm.ListTopics(ctx, topic); err != nil || d[topic].Err == nil {
					t.Fatalf("ListTopics(%s) before creating it = %v, %v; want an unknown topic", topic, d, err)
				}
			}
			if tc.exists {
				var configs map[string]*string
				if tc.policy != "" {
					configs = map[string]*string{"cleanup.policy": kadm.StringPtr(tc.policy)}
				}
				if _, err := adm.CreateTopic(ctx, tc.partitions, 1, configs, topic); err != nil {
					t.Fatalf("CreateTopic(%s): %v", topic, err)
				}
			}
			err := EnsureChangelog(ctx, adm, topic, 3)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("EnsureChangelog(%s, 3) = nil, want error", topic)
				}
				for _, want := range append(tc.wantErr, topic) {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("EnsureChangelog(%s, 3) = %q, want it to contain %q", topic, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureChangelog(%s, 3) = %v, want nil", topic, err)
			}
			// Whatever it did, the topic now has what a changelog needs, and a
			// second call agrees.
			// Real Kafka's brokers learn of a new topic a moment after
			// its creation returns: wait until they describe it.
			details, err := adm.ListTopics(ctx, topic)
			for err == nil && details[topic].Err != nil && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
				details, err = adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
			}
			if err != nil {
				t.Fatalf("ListTopics: %v", err)
			}
			if got := len(details[topic].Partitions); got != 3 {
				t.Errorf("%s has %d partitions, want 3", topic, got)
			}
			configs, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				t.Fatalf("DescribeTopicConfigs: %v", err)
			}
			rc, err := configs.On(topic, nil)
			if err != nil {
				t.Fatalf("DescribeTopicConfigs(%s): %v", topic, err)
			}
			var policy string
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" {
					policy = c.MaybeValue()
				}
			}
			if !hasCompact(policy) {
				t.Errorf("%s has cleanup.policy=%q, want compact", topic, policy)
			}
			if err := EnsureChangelog(ctx, adm, topic, 3); err != nil {
				t.Errorf("second EnsureChangelog(%s, 3) = %v, want nil", topic, err)
			}
		})
	}
}

func TestHasCompact(t *testing.T) {
	cases := []struct {
		policy string
		want   bool
	}{
		{"compact", true},
		{"compact,delete", true},
		{"delete, compact", true},
		{"delete", false},
		{"", false},
		{"compaction", false},
	}
	for _, tc := range cases {
		if got := hasCompact(tc.policy); got != tc.want {
			t.Errorf("hasCompact(%q) = %t, want %t", tc.policy, got, tc.want)
		}
	}
}
