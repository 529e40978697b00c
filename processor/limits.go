package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// checkLimits compares the session and transaction timeouts with the
// limits the brokers enforce, before the member's client exists: a broker
// refuses a join whose session timeout lies outside
// [group.min.session.timeout.ms, group.max.session.timeout.ms]
// (INVALID_SESSION_TIMEOUT) and a transactional producer whose timeout is
// above transaction.max.timeout.ms (INVALID_TRANSACTION_TIMEOUT). The
// client retries a refused join forever, and the producer is first
// initialized when the first record arrives, so without this check a
// wrong setting shows as warnings or as a failure long after start.
//
// The limits are read from one broker's configuration (brokers of a
// cluster share them). A cluster that does not let us describe it
// (no DESCRIBE_CONFIGS on the cluster) is not checked here; a refused
// join still stops the processor with the same advice (fetchError).
func (p *Processor) checkLimits(ctx context.Context, watch *connWatch) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.cfg.Brokers...), kgo.ClientID(p.cfg.ClientID), kgo.WithHooks(watch)}, p.cfg.KafkaOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	watch.dialsTLSFrom(cl) // a TLS handshake failing is then named as such
	adm := kadm.NewClient(cl)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		p.log.Debug("not checking the broker's timeout limits: no metadata", "err", err)
		return nil
	}
	if len(meta.Brokers) == 0 {
		return nil
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, meta.Brokers[0].NodeID)
	if err != nil || len(rcs) == 0 || rcs[0].Err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && len(rcs) > 0 {
			err = rcs[0].Err
		}
		p.log.Debug("not checking the broker's timeout limits: cannot describe its configuration", "err", err)
		return nil
	}
	limit := func(key string) (time.Duration, bool) {
		for _, c := range rcs[0].Configs {
			if c.Key == key && c.Value != nil {
				ms, err := strconv.ParseInt(*c.Value, 10, 64)
				return time.Duration(ms) * time.Millisecond, err == nil
			}
		}
		return 0, false
	}
	return limitErrors(p.cfg.SessionTimeout, p.cfg.TransactionTimeout, p.topo.Guarantee, limit)
}

// limitErrors reports every timeout outside the broker's limits.
func limitErrors(session, txnTimeout time.Duration, guarantee topology.Guarantee, limit func(key string) (time.Duration, bool)) error {
	var errs []error
	if lo, ok := limit("group.min.session.timeout.ms"); ok && session < lo {
		errs = append(errs, fmt.Errorf("kafka.session_timeout %s is below the broker's group.min.session.timeout.ms (%s): the broker refuses the group join (INVALID_SESSION_TIMEOUT); raise kafka.session_timeout (--session-timeout) to at least %s, or lower group.min.session.timeout.ms on the brokers", session, lo, lo))
	}
	if hi, ok := limit("group.max.session.timeout.ms"); ok && session > hi {
		errs = append(errs, fmt.Errorf("kafka.session_timeout %s is above the broker's group.max.session.timeout.ms (%s): the broker refuses the group join (INVALID_SESSION_TIMEOUT); lower kafka.session_timeout (--session-timeout) to at most %s, or raise group.max.session.timeout.ms on the brokers", session, hi, hi))
	}
	exactlyOnce := guarantee == topology.ExactlyOnce || guarantee == ""
	if hi, ok := limit("transaction.max.timeout.ms"); ok && exactlyOnce && txnTimeout > hi {
		errs = append(errs, fmt.Errorf("kafka.transaction_timeout %s is above the broker's transaction.max.timeout.ms (%s): the broker refuses the transactional producer (INVALID_TRANSACTION_TIMEOUT); lower kafka.transaction_timeout (--transaction-timeout) to at most %s, or raise transaction.max.timeout.ms on the brokers", txnTimeout, hi, hi))
	}
	return errors.Join(errs...)
}

// fetchError is the error a fatal fetch error stops the processor with.
// A broker that refuses the session timeout refuses every join with it:
// the client would retry forever, logging a warning each time.
func (p *Processor) fetchError(topic string, partition int32, err error) error {
	if errors.Is(err, kerr.InvalidSessionTimeout) {
		return fmt.Errorf("joining group %s: the broker refuses kafka.session_timeout %s (INVALID_SESSION_TIMEOUT): it must lie within the broker's group.min.session.timeout.ms and group.max.session.timeout.ms (Kafka's defaults: 6s and 30m); set kafka.session_timeout (--session-timeout) within them, and kafka.transaction_timeout below it: %w",
			p.topo.Group, p.cfg.SessionTimeout, err)
	}
	return fmt.Errorf("fetching %s/%d: %w", topic, partition, err)
}
