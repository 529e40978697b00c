package main

import (
	"strings"
	"testing"
	"time"
)

// Apache Kafka refuses a session timeout below group.min.session.timeout.ms
// (6s by default): against a real cluster the instances must run with one
// a stock broker accepts, while the embedded broker keeps the short ones.
func TestTimeoutsValidForKafka(t *testing.T) {
	for _, c := range []struct {
		name             string
		cfg              Config
		session, txn     time.Duration
		pause, rebalance time.Duration
	}{
		{"embedded", Config{}, 4 * time.Second, 3 * time.Second, 6 * time.Second, 8 * time.Second},
		{"--brokers", Config{Brokers: "127.0.0.1:9092"}, 6 * time.Second, 5 * time.Second, 8 * time.Second, 12 * time.Second},
		{"--kafka-nodes", Config{KafkaNodes: 3}, 6 * time.Second, 5 * time.Second, 8 * time.Second, 12 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.setDefaults()
			if cfg.SessionTimeout != c.session || cfg.TransactionTimeout != c.txn || cfg.PauseFor != c.pause || cfg.RebalanceTimeout != c.rebalance {
				t.Errorf("session %s, transaction %s, pause %s, rebalance %s; want %s, %s, %s, %s",
					cfg.SessionTimeout, cfg.TransactionTimeout, cfg.PauseFor, cfg.RebalanceTimeout, c.session, c.txn, c.pause, c.rebalance)
			}
		})
	}
}

func TestValidateBrokerAndRecoveryModes(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // substring of the error; empty: valid
	}{
		{"broker kills need 3 nodes", func(c *Config) { c.BrokerKills = 4 }, "--broker-kills 4: needs a 3-node"},
		{"broker kills on 1 node", func(c *Config) { c.BrokerKills = 4; c.KafkaNodes = 1 }, "needs a 3-node"},
		{"broker kills on 3 nodes", func(c *Config) { c.BrokerKills = 4; c.KafkaNodes = 3 }, ""},
		{"2 nodes", func(c *Config) { c.KafkaNodes = 2 }, "--kafka-nodes 2: want 1 or 3"},
		{"nodes and brokers", func(c *Config) { c.KafkaNodes = 1; c.Brokers = "x:1" }, "want one of them"},
		{"recovery alone", func(c *Config) { c.RecoveryKills = 3; c.Kills, c.Pauses = 0, 0 }, ""},
		{"recovery with kills", func(c *Config) { c.RecoveryKills = 3 }, "--recovery-kills 3: measures alone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := shortConfig()
			c.edit(&cfg)
			cfg.setDefaults()
			err := cfg.validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("validate() = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// resumed: the time until every given partition committed above its
// offset at the kill; a partition that never moved again means not yet.
func TestResumed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	m := &offsetMonitor{hist: map[int32][]offsetPoint{
		0: {{at(0), 10}, {at(500), 20}, {at(7000), 30}},
		1: {{at(100), 5}, {at(2000), 9}},
		2: {{at(0), 1}},
	}}
	kill := at(1000)
	if d, ok := m.resumed(kill, kill, []int32{0, 1}); !ok || d != 6*time.Second {
		t.Errorf("resumed(0, 1) = %s, %v; want 6s, true", d, ok)
	}
	if d, ok := m.resumed(kill, kill, []int32{1}); !ok || d != time.Second {
		t.Errorf("resumed(1) = %s, %v; want 1s, true", d, ok)
	}
	if _, ok := m.resumed(kill, kill, []int32{0, 2}); ok {
		t.Error("resumed(0, 2) = ok, want not yet: partition 2 never moved after the kill")
	}
	if _, ok := m.resumed(kill, kill, nil); ok {
		t.Error("resumed(no partitions) = ok, want false")
	}
	// Partition 1's commit at 2s is the killed process's last one when
	// progress counts from 2.5s on: it has not resumed yet.
	if _, ok := m.resumed(kill, at(2500), []int32{1}); ok {
		t.Error("resumed(1, from 2.5s) = ok, want not yet")
	}
	if d, ok := m.resumed(kill, at(1500), []int32{0}); !ok || d != 6*time.Second {
		t.Errorf("resumed(0, from 1.5s) = %s, %v; want 6s, true", d, ok)
	}
	if !m.movedSince([]int32{0, 1}, at(1500)) {
		t.Error("movedSince(0, 1; 1.5s) = false, want true")
	}
	if m.movedSince([]int32{0, 2}, at(1500)) {
		t.Error("movedSince(0, 2; 1.5s) = true, want false")
	}
}

func TestBrokerCoverage(t *testing.T) {
	now := time.Now()
	evs := []brokerKillEvent{
		{At: now, Role: roleInLeader, Moment: momentStream, Held: []string{roleInLeader, roleGroupCoord}, Restart: 4 * time.Second, InSync: 6 * time.Second},
		{At: now, Role: roleTxnCoord, Moment: momentCommit, Committing: true, Held: []string{roleTxnCoord}, Restart: 8 * time.Second, InSync: 9 * time.Second},
		{Role: roleGroupCoord, Moment: momentRestore, Err: "finding the group coordinator: timeout"},
	}
	var rep Report
	brokerCoverage(&rep, evs)
	if rep.BrokerKills != 2 || rep.BrokerKillErrors != 1 || rep.BrokerKillsCommitting != 1 {
		t.Errorf("kills %d, errors %d, committing %d; want 2, 1, 1", rep.BrokerKills, rep.BrokerKillErrors, rep.BrokerKillsCommitting)
	}
	if rep.BrokerKillsByRole[roleInLeader] != 1 || rep.BrokerKillsByRole[roleGroupCoord] != 0 || rep.BrokerKillsHeld[roleGroupCoord] != 1 {
		t.Errorf("by role %v, held %v", rep.BrokerKillsByRole, rep.BrokerKillsHeld)
	}
	if rep.BrokerRestartP50 != 4 || rep.BrokerRestartMax != 8 || rep.BrokerInSyncMax != 9 {
		t.Errorf("restart p50 %g max %g, in sync max %g; want 4, 8, 9", rep.BrokerRestartP50, rep.BrokerRestartMax, rep.BrokerInSyncMax)
	}
}
