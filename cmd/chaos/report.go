package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a chaos run found. Durations are in seconds.
type Report struct {
	Mode              string  `json:"mode"`
	Seed              uint64  `json:"seed"`
	Instances         int     `json:"instances"`
	FaultPhaseSeconds float64 `json:"fault_phase_seconds"`
	ElapsedSeconds    float64 `json:"elapsed_seconds"`
	LogDir            string  `json:"log_dir,omitempty"`

	// Input. InputRecords is what read_committed sees on `in`.
	GeneratedRecords       int `json:"generated_records"`
	InputRecords           int `json:"input_records"`
	InputKeys              int `json:"input_keys"`
	AbortedUpstreamRecords int `json:"aborted_upstream_records"`
	AbortedUpstreamTxns    int `json:"aborted_upstream_transactions"`
	FailedUpstreamTxns     int `json:"failed_upstream_transactions,omitempty"`
	UpstreamAbortedInLog   int `json:"upstream_aborted_records_in_log"`
	InputMismatches        int `json:"input_mismatches"`

	// Output as read_committed sees it, checked against the input.
	Updates          int  `json:"updates"`
	DuplicateUpdates int  `json:"duplicate_updates"`
	LostUpdates      int  `json:"lost_updates"`
	DuplicateRecords int  `json:"duplicate_records"`
	LostRecords      int  `json:"lost_records"`
	Phantoms         int  `json:"phantoms"`
	WrongAggregates  int  `json:"wrong_aggregates"`
	OrderViolations  int  `json:"order_violations"`
	FinalMismatches  int  `json:"final_mismatches"`
	FinalBelow       int  `json:"final_below_truth"`
	FinalAbove       int  `json:"final_above_truth"`
	Malformed        int  `json:"malformed_updates"`
	CaughtUp         bool `json:"caught_up"`

	// The windows (win-close: emit on_close, win-commit: emit on_commit)
	// as read_committed sees them, checked against the windows of the
	// committed input. Held to the truth under exactly_once only: the
	// other modes may count a record twice or lose it, and so a window.
	WindowsTruth          int    `json:"windows_with_records"`
	WindowsClosed         int    `json:"windows_closed"`
	WindowFinalStreamTime string `json:"window_final_stream_time,omitempty"`
	WindowsSettled        bool   `json:"windows_settled"`
	WindowCloseRows       int    `json:"window_close_rows"`
	WindowDuplicates      int    `json:"window_duplicates"`
	WindowWrong           int    `json:"window_wrong"`
	WindowMissing         int    `json:"window_missing"`
	WindowEarly           int    `json:"window_early"`
	WindowCommitRows      int    `json:"window_commit_rows"`
	WindowCommitWrong     int    `json:"window_commit_wrong"`
	WindowCommitMissing   int    `json:"window_commit_missing"`
	WindowCommitBackward  int    `json:"window_commit_backward"`
	WindowClockMismatches int    `json:"window_clock_mismatches"`
	WindowLate            int    `json:"window_late_records"`
	WindowLateByClock     int    `json:"window_late_by_committed_watermarks"`
	WindowLateDisagree    int    `json:"window_late_disagreements"`

	// The joins (each record of `in` left-joined with its key's row in the
	// table `rows`, which changes while the stream flows, to `joined` and,
	// through the join's repartition topic, to `joined-rekeyed`; figures
	// summed over both); see join.go for what is checked and why.
	TableWrites        int `json:"table_writes"`
	TableDeletes       int `json:"table_deletes"`
	TableAbortedRows   int `json:"table_aborted_rows"`
	JoinRows           int `json:"join_rows"`
	JoinMatched        int `json:"join_matched"`
	JoinDuplicates     int `json:"join_duplicates"`
	JoinLost           int `json:"join_lost"`
	JoinPhantoms       int `json:"join_phantoms"`
	JoinWrongRows      int `json:"join_wrong_rows"`
	JoinStale          int `json:"join_stale"`
	JoinBackwards      int `json:"join_backwards"`
	JoinAbortedRecords int `json:"join_aborted_records"`
	JoinAbortedVisible int `json:"join_aborted_visible"`

	// The stream-stream join (`ss-left` outer-joined with `ss-right`
	// within 1s, grace 1s, to `ss-joined`); see ssjoin.go.
	SSJoinLeft            int `json:"ss_join_left_records"`
	SSJoinRight           int `json:"ss_join_right_records"`
	SSJoinPairsWanted     int `json:"ss_join_pairs_wanted"`
	SSJoinUnmatchedWanted int `json:"ss_join_unmatched_wanted"`
	SSJoinRows            int `json:"ss_join_rows"`
	SSJoinDuplicates      int `json:"ss_join_duplicates"`
	SSJoinLost            int `json:"ss_join_lost"`
	SSJoinPhantoms        int `json:"ss_join_phantoms"`
	SSJoinWrong           int `json:"ss_join_wrong"`
	SSJoinAbortedRecords  int `json:"ss_join_aborted_records"`
	SSJoinAbortedVisible  int `json:"ss_join_aborted_visible"`

	// Output as read_uncommitted sees it, with each transaction's fate
	// taken from its marker.
	UncommittedRecords   int `json:"read_uncommitted_records"`
	AbortedOutputRecords int `json:"aborted_output_records"`
	AbortedVisible       int `json:"aborted_visible"`
	CommittedHidden      int `json:"committed_hidden"`
	OpenTxnRecords       int `json:"open_transaction_records"`

	// After every process stopped.
	OpenTransactions   int      `json:"open_transactions"`
	OpenTransactionIDs []string `json:"open_transaction_ids,omitempty"`
	UnstablePartitions int      `json:"unstable_partitions"`

	// Coverage.
	Kills             int     `json:"kills"`
	KillsOpenTxn      int     `json:"kills_open_transaction"`
	KillsProbed       int     `json:"kills_probed"`
	KillsAfterRestart int     `json:"kills_after_restart"`
	KillsRebalance    int     `json:"kills_during_rebalance"`
	KillsTableRestore int     `json:"kills_during_table_restore"`
	Restarts          int     `json:"restarts"`
	Assignments       int     `json:"partition_assignments"`
	ZombiesPaused     int     `json:"zombies_paused"`
	ZombiesOpenTxn    int     `json:"zombies_open_transaction"`
	ZombiesRebuilt    int     `json:"zombies_rebuilt"`
	ZombiesFenced     int     `json:"zombies_fenced"`
	FencedRebuilds    int     `json:"fenced_rebuilds"`
	Rebuilds          int     `json:"client_rebuilds"`
	UnexpectedExits   int     `json:"unexpected_exits"`
	GhostMembers      int     `json:"ghost_members"`
	UncleanStops      int     `json:"unclean_stops"`
	RecoveryMeasured  int     `json:"recovery_measured"`
	RecoveryP50       float64 `json:"recovery_p50_seconds"`
	RecoveryMax       float64 `json:"recovery_max_seconds"`
	CatchUpSeconds    float64 `json:"catch_up_seconds"`

	// Broker faults (BrokerKills, on a 3-node Apache Kafka cluster): kills
	// by the role they aimed at, by the roles the killed node held at the
	// kill, and by moment; how long a restarted node took to be listed
	// again and to have every replica back in sync; the smallest
	// replication factor and min.insync.replicas over every topic.
	BrokerNodes           int            `json:"broker_nodes,omitempty"`
	BrokerKills           int            `json:"broker_kills"`
	BrokerKillsByRole     map[string]int `json:"broker_kills_by_role,omitempty"`
	BrokerKillsHeld       map[string]int `json:"broker_kills_node_held,omitempty"`
	BrokerKillsByMoment   map[string]int `json:"broker_kills_by_moment,omitempty"`
	BrokerKillsCommitting int            `json:"broker_kills_prepare_commit"`
	BrokerKillsCommitLate int            `json:"broker_kills_txn_past_commit_interval"`
	BrokerKillsRestoring  int            `json:"broker_kills_restoring"`
	BrokerKillErrors      int            `json:"broker_kill_errors"`
	BrokerRestartP50      float64        `json:"broker_restart_p50_seconds,omitempty"`
	BrokerRestartMax      float64        `json:"broker_restart_max_seconds,omitempty"`
	BrokerInSyncP50       float64        `json:"broker_in_sync_p50_seconds,omitempty"`
	BrokerInSyncMax       float64        `json:"broker_in_sync_max_seconds,omitempty"`
	ReplicatedTopics      int            `json:"replicated_topics,omitempty"`
	MinReplicationFactor  int            `json:"min_replication_factor,omitempty"`
	MinInsyncReplicas     int            `json:"min_insync_replicas,omitempty"`

	// Recovery mode (RecoveryKills): per measured kill, the time from the
	// SIGKILL of an instance (restarted at once) until every partition it
	// owned committed again.
	RecoveryMembership     string  `json:"recovery_membership,omitempty"`
	RecoverySessionTimeout float64 `json:"recovery_session_timeout_seconds,omitempty"`
	RecoveryKills          int     `json:"recovery_kills,omitempty"`
	RecoveryKillsMeasured  int     `json:"recovery_kills_measured,omitempty"`
	RecoveryVictimP50      float64 `json:"recovery_victim_p50_seconds,omitempty"`
	RecoveryVictimMax      float64 `json:"recovery_victim_max_seconds,omitempty"`

	// Violations of the mode's contract; empty means it held.
	Violations []string `json:"violations"`
	// Examples of each kind of finding, and the log tails of processes
	// that exited on their own or did not stop cleanly.
	Examples map[string][]string `json:"examples,omitempty"`
	Problems []string            `json:"problems,omitempty"`
}

// Failed reports whether the mode's contract failed.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

// A check is one figure held to zero in some modes.
type check struct {
	name  string
	value int
	modes []string // the modes whose contract requires value == 0
}

var allModes = []string{exactlyOnce, atLeastOnce, atMostOnce}

func (r *Report) checks() []check {
	eo, alo, amo := exactlyOnce, atLeastOnce, atMostOnce
	return []check{
		{"duplicate updates (a key's count n emitted twice)", r.DuplicateUpdates, []string{eo}},
		{"lost updates (a key's count n never emitted)", r.LostUpdates, []string{eo}},
		{"duplicate records (an input id applied twice)", r.DuplicateRecords, []string{eo, amo}},
		{"lost records (an input id never applied)", r.LostRecords, []string{eo, alo}},
		{"phantoms (aborted upstream, unknown or other key's id)", r.Phantoms, allModes},
		{"wrong aggregates (n, total, last_seq, last_id vs first n records)", r.WrongAggregates, []string{eo}},
		{"per-key order violations (n decreasing)", r.OrderViolations, []string{eo}},
		{"final table mismatches (last update vs count and sum)", r.FinalMismatches, []string{eo}},
		{"final count below the truth", r.FinalBelow, []string{eo, alo}},
		{"final count above the truth", r.FinalAbove, []string{eo, amo}},
		{"aborted or open records read_committed returns", r.AbortedVisible, []string{eo}},
		{"committed records read_committed does not return", r.CommittedHidden, []string{eo}},
		{"records of transactions still open at the end", r.OpenTxnRecords, []string{eo}},
		{"open transactions at the end (ListTransactions)", r.OpenTransactions, []string{eo}},
		{"partitions with last stable offset < high watermark", r.UnstablePartitions, []string{eo}},
		{"malformed updates", r.Malformed, allModes},
		{"input mismatches (generator vs read_committed `in`)", r.InputMismatches, allModes},
		{"instances that exited on their own", r.UnexpectedExits, allModes},
		{"unclean stops (SIGTERM: not exit 0 within 30s)", r.UncleanStops, allModes},
	}
}

// windowChecks are the figures of the windows, held to zero under
// exactly_once only.
func (r *Report) windowChecks() []check {
	eo := []string{exactlyOnce}
	return []check{
		{"on_close: duplicate final rows (a window or late record twice)", r.WindowDuplicates, eo},
		{"on_close: rows with a wrong count or sum, or malformed", r.WindowWrong, eo},
		{"on_close: closed windows without a final row", r.WindowMissing, eo},
		{"on_close: final rows of windows not closed yet", r.WindowEarly, eo},
		{"on_commit: windows whose last row is wrong, or malformed rows", r.WindowCommitWrong, eo},
		{"on_commit: windows with records but no row", r.WindowCommitMissing, eo},
		{"on_commit: a window's count going back", r.WindowCommitBackward, eo},
		{"watermarks (repartition topics) != the input's last timestamps", r.WindowClockMismatches, eo},
		{"late or not: the daemon and the clock replayed over the committed watermarks disagree", r.WindowLateDisagree, eo},
	}
}

// joinChecks are the figures of the join.
func (r *Report) joinChecks() []check {
	eo, alo, amo := exactlyOnce, atLeastOnce, atMostOnce
	return []check{
		{"duplicate joined rows (an input record joined twice)", r.JoinDuplicates, []string{eo, amo}},
		{"lost joined rows (an input record never joined)", r.JoinLost, []string{eo, alo}},
		{"join phantoms (aborted upstream input or table row, or unknown record)", r.JoinPhantoms, allModes},
		{"wrong joined rows (another key's row, a version that never committed, malformed)", r.JoinWrongRows, allModes},
		{"stale joined rows (older than the table the group had committed before the record was produced)", r.JoinStale, []string{eo}},
		{"joined rows going back (a key's row older than an earlier record's)", r.JoinBackwards, []string{eo}},
		{"aborted, open or hidden records of `joined`", r.JoinAbortedVisible, []string{eo}},
	}
}

// ssJoinChecks are the figures of the stream-stream join: phantoms
// whatever the mode, the rest under exactly_once only (a weaker mode may
// lose a buffered record or buffer it twice, and so turn a pair into an
// unmatched row or the reverse).
func (r *Report) ssJoinChecks() []check {
	eo := []string{exactlyOnce}
	return []check{
		{"duplicate rows (a pair or an unmatched record twice)", r.SSJoinDuplicates, eo},
		{"lost rows (a pair in the bounds, or an unmatched record whose window closed, never emitted)", r.SSJoinLost, eo},
		{"phantoms (a record of an aborted upstream transaction, or unknown)", r.SSJoinPhantoms, allModes},
		{"wrong rows (a pair out of bounds, unmatched with a partner or before its window closed, malformed)", r.SSJoinWrong, eo},
		{"aborted, open or hidden records of `ss-joined`", r.SSJoinAbortedVisible, eo},
	}
}

// evaluate fills Violations from the figures and the mode's contract.
func (r *Report) evaluate() {
	r.Violations = []string{}
	for _, c := range slices.Concat(r.checks(), r.windowChecks(), r.joinChecks(), r.ssJoinChecks()) {
		if c.value != 0 && slices.Contains(c.modes, r.Mode) {
			r.Violations = append(r.Violations, fmt.Sprintf("%s: %d", c.name, c.value))
		}
	}
	if !r.CaughtUp {
		r.Violations = append(r.Violations, "the group did not commit every input record before the catch-up timeout")
	}
	if r.Mode == exactlyOnce && r.CaughtUp && !r.WindowsSettled {
		r.Violations = append(r.Violations, "the windows did not settle before the catch-up timeout (the last watermarks were not all written and consumed)")
	}
	if r.Mode == exactlyOnce && r.Kills > 0 && r.AbortedOutputRecords == 0 {
		r.Violations = append(r.Violations, "no aborted output record: the kills hit no open transaction, so the run proved nothing")
	}
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(10 * time.Millisecond).String()
}

// WriteTable prints the report as a table: each figure, its value, and
// for the figures the mode's contract covers, whether it held.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "chaos: mode %s, seed %d, %d instances, fault phase %s, elapsed %s\n",
		r.Mode, r.Seed, r.Instances, secs(r.FaultPhaseSeconds), secs(r.ElapsedSeconds))
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	row := func(name string, value any, verdict string) { fmt.Fprintf(tw, "  %s\t%v\t%s\n", name, value, verdict) }
	fmt.Fprintln(tw, "input\t\t")
	row("records committed upstream (read_committed `in`)", r.InputRecords, "")
	row("keys", r.InputKeys, "")
	aborted := fmt.Sprintf("%d in %d txns (%d in the log)", r.AbortedUpstreamRecords, r.AbortedUpstreamTxns, r.UpstreamAbortedInLog)
	if r.FailedUpstreamTxns > 0 {
		aborted += fmt.Sprintf(", %d more txns failed under a broker kill (never committed)", r.FailedUpstreamTxns)
	}
	row("records in aborted upstream transactions", aborted, "")
	fmt.Fprintln(tw, "output (read_committed `out`)\t\t")
	row("updates", r.Updates, "")
	ok := func(bad bool) string {
		if bad {
			return "FAIL"
		}
		return "ok"
	}
	checkRows := func(cs []check) {
		for _, c := range cs {
			verdict := "counted"
			if slices.Contains(c.modes, r.Mode) {
				verdict = "must be 0: " + ok(c.value != 0)
			}
			row(c.name, c.value, verdict)
		}
	}
	checkRows(r.checks())
	row("group caught up on `in` after the faults", fmt.Sprintf("%v (%s)", r.CaughtUp, secs(r.CatchUpSeconds)), "must be true: "+ok(!r.CaughtUp))
	heading := "windows (read_committed `win-close`, `win-commit`; held to the truth under exactly_once only)"
	if r.Mode != exactlyOnce {
		heading = "windows (read_committed `win-close`, `win-commit`; counted, not held: " + r.Mode + " may count a record twice or lose it)"
	}
	fmt.Fprintln(tw, heading+"\t\t")
	row("windows with records / closed by the final stream time", fmt.Sprintf("%d / %d (final stream time %s)", r.WindowsTruth, r.WindowsClosed, r.WindowFinalStreamTime), "")
	row("rows on_close / on_commit", fmt.Sprintf("%d / %d", r.WindowCloseRows, r.WindowCommitRows), "")
	row("records judged late (dead-lettered) / late by the committed watermarks", fmt.Sprintf("%d / %d", r.WindowLate, r.WindowLateByClock), "")
	checkRows(r.windowChecks())
	settled := "counted"
	if r.Mode == exactlyOnce {
		settled = "must be true: " + ok(!r.WindowsSettled)
	}
	row("windows settled (every upstream idle everywhere, watermarks consumed)", r.WindowsSettled, settled)
	fmt.Fprintln(tw, "stream-table joins (read_committed `joined`, and `joined-rekeyed` through a repartition topic: `in` left-joined with the table `rows` as it changes)\t\t")
	row("table writes committed / of them deletes / rows in aborted upstream transactions", fmt.Sprintf("%d / %d / %d", r.TableWrites, r.TableDeletes, r.TableAbortedRows), "")
	row("joined rows / with a row", fmt.Sprintf("%d / %d", r.JoinRows, r.JoinMatched), "")
	checkRows(r.joinChecks())
	row("aborted joined records (read_uncommitted `joined`)", r.JoinAbortedRecords, "")
	fmt.Fprintln(tw, "stream-stream join (read_committed `ss-joined`: `ss-left` outer-joined with `ss-right` within 1s, grace 1s)\t\t")
	row("records left / right (read_committed)", fmt.Sprintf("%d / %d", r.SSJoinLeft, r.SSJoinRight), "")
	row("rows / pairs wanted / unmatched wanted", fmt.Sprintf("%d / %d / %d", r.SSJoinRows, r.SSJoinPairsWanted, r.SSJoinUnmatchedWanted), "")
	checkRows(r.ssJoinChecks())
	row("aborted joined records (read_uncommitted `ss-joined`)", r.SSJoinAbortedRecords, "")
	fmt.Fprintln(tw, "aborted attempts (read_uncommitted `out`, fate from markers)\t\t")
	row("records read_uncommitted sees", r.UncommittedRecords, "")
	verdict := ""
	if r.Mode == exactlyOnce && r.Kills > 0 {
		verdict = "must be > 0: " + ok(r.AbortedOutputRecords == 0)
	}
	row("aborted output records", r.AbortedOutputRecords, verdict)
	fmt.Fprintln(tw, "faults\t\t")
	row("kills (SIGKILL)", r.Kills, "")
	row("  right after a restart (joining or restoring)", r.KillsAfterRestart, "")
	row("  during a rebalance another start caused", r.KillsRebalance, "")
	row("  with partitions assigned and the table not restored yet", r.KillsTableRestore, "")
	row("  with the victim's transaction Ongoing at the broker", fmt.Sprintf("%d of %d probed", r.KillsOpenTxn, r.KillsProbed), "")
	row("restarts", r.Restarts, "")
	row("partition assignments (\"partitions assigned\" log lines)", r.Assignments, "")
	row("zombies paused (SIGSTOP > session timeout)", fmt.Sprintf("%d (%d with their transaction Ongoing)", r.ZombiesPaused, r.ZombiesOpenTxn), "")
	row("zombies that woke and rebuilt their client (\"rebuilding the client\", any cause)", r.ZombiesRebuilt, "")
	row("  of which \"producer fenced\"", r.ZombiesFenced, "")
	row("producer-fenced rebuilds, all logs", r.FencedRebuilds, "")
	row("client rebuilds, all logs", r.Rebuilds, "")
	row("ghost members the broker kept (see catchUp), shed by a restart", r.GhostMembers, "")
	row("recovery after a kill (until every partition with input pending commits again), p50 / max", fmt.Sprintf("%s / %s (%d kills measured)", secs(r.RecoveryP50), secs(r.RecoveryMax), r.RecoveryMeasured), "")
	if r.RecoveryMembership != "" {
		row(fmt.Sprintf("recovery mode: %s membership, session timeout %s; instance SIGKILLed and restarted at once", r.RecoveryMembership, secs(r.RecoverySessionTimeout)), fmt.Sprintf("%d kills", r.RecoveryKills), "")
		row("  kill to the next commit on every partition the victim owned, p50 / max", fmt.Sprintf("%s / %s (%d kills measured)", secs(r.RecoveryVictimP50), secs(r.RecoveryVictimMax), r.RecoveryKillsMeasured), "")
	}
	if r.BrokerNodes > 0 {
		fmt.Fprintf(tw, "broker faults (%d-node Apache Kafka)\t\t\n", r.BrokerNodes)
		row("topics (incl. Kafka's offsets and transaction state): min replication factor / min.insync.replicas", fmt.Sprintf("%d / %d (%d topics)", r.MinReplicationFactor, r.MinInsyncReplicas, r.ReplicatedTopics), "")
		row("broker kills (SIGKILL of a node, restarted after 1-3s)", r.BrokerKills, "")
		for _, role := range brokerRoles {
			row("  aimed at the "+role, fmt.Sprintf("%d (the killed node held this role in %d kills)", r.BrokerKillsByRole[role], r.BrokerKillsHeld[role]), "")
		}
		for _, m := range brokerMoments {
			v := fmt.Sprint(r.BrokerKillsByMoment[m])
			switch m {
			case momentCommit:
				v += fmt.Sprintf(" (the instance's transaction: %d in PrepareCommit, %d Ongoing past the commit interval, the rest Ongoing)", r.BrokerKillsCommitting, r.BrokerKillsCommitLate)
			case momentRestore:
				v += fmt.Sprintf(" (%d before the instance logged \"restored\")", r.BrokerKillsRestoring)
			}
			row("  "+m, v, "")
		}
		row("  failed (node not found, not restarted, replicas not back in sync)", r.BrokerKillErrors, "")
		row("node restart: until listed again / until every replica in sync, p50 / max", fmt.Sprintf("%s / %s, %s / %s", secs(r.BrokerRestartP50), secs(r.BrokerRestartMax), secs(r.BrokerInSyncP50), secs(r.BrokerInSyncMax)), "")
	}
	tw.Flush()
	// tabwriter pads the empty cells of section headings: trim them.
	for _, line := range strings.Split(strings.TrimRight(table.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if len(r.Examples) > 0 {
		fmt.Fprintln(w, "examples:")
		kinds := make([]string, 0, len(r.Examples))
		for k := range r.Examples {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			for _, e := range r.Examples[k] {
				fmt.Fprintf(w, "  %s: %s\n", k, e)
			}
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", strings.ReplaceAll(p, "\n", "\n    "))
	}
	if r.LogDir != "" {
		fmt.Fprintf(w, "logs: %s\n", r.LogDir)
	}
	if r.Failed() {
		fmt.Fprintf(w, "FAIL: the %s contract does not hold:\n", r.Mode)
		for _, v := range r.Violations {
			fmt.Fprintf(w, "  - %s\n", v)
		}
		return
	}
	fmt.Fprintf(w, "PASS: the %s contract holds\n", r.Mode)
}
