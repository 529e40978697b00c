// Command chaos runs exactly under faults and checks what a read_committed
// reader of its output sees against the ground truth.
//
// It starts `exactly broker` and 1 to 3 `exactly run` processes of a
// per-key aggregate pipeline as separate processes, streams seeded input
// into them (some of it in upstream transactions that abort), and during a
// fault phase SIGKILLs instances (after they worked a while, right after a
// restart, during the rebalance another's start caused) and SIGSTOPs some
// for longer than the session timeout (zombies). Then it restarts
// everything, waits until the group has consumed all input, stops every
// instance with SIGTERM and checks every output update: duplicates,
// losses, phantoms, wrong aggregates, order, aborted records visible to
// read_committed and transactions left open, against the contract of the
// pipeline's delivery guarantee (--mode). It prints a table of the
// figures and exits 1 when the contract does not hold, 2 when the run
// could not be carried out.
//
// On Apache Kafka (--kafka-nodes starts a cluster on loopback from its
// jars, see kafkatest) it can also SIGKILL brokers: --broker-kills on a
// 3-node cluster aims in turn at the leader of an input partition, of an
// output partition, the group coordinator and an instance's transaction
// coordinator, mid-stream, mid-commit and during a restore, and restarts
// the node. --recovery-kills measures instead how long a killed instance's
// partitions stop committing, with dynamic or --static-membership.
//
//	go run ./cmd/chaos                       # the short setting, about 2 minutes
//	go run ./cmd/chaos --soak                # 10 minutes, 1,000,000 records
//	go run ./cmd/chaos --mode at_least_once --json report.json
//	go run ./cmd/chaos --kafka-nodes 3 --broker-kills 6 --duration 80s --kills 6 --pauses 1
//	go run ./cmd/chaos --kafka-nodes 1 --recovery-kills 3 --kills 0 --pauses 0 --duration 40s [--static-membership]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, jsonPath, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		if rep.LogDir != "" {
			fmt.Fprintln(os.Stderr, "chaos: logs in", rep.LogDir)
		}
		os.Exit(2)
	}
	rep.WriteTable(os.Stdout)
	if jsonPath != "" {
		if err := writeJSON(jsonPath, os.Stdout, &rep); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(2)
		}
	}
	if rep.Failed() {
		os.Exit(1)
	}
}

func writeJSON(path string, stdout io.Writer, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
