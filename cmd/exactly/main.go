// Command exactly is a Kafka-to-Kafka stream processor with exactly-once
// output: see the README.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case exitCode(err) == 2:
		// Problems in files and flags: one per line, file:line:col first.
		fmt.Fprintln(os.Stderr, err)
	case err != nil:
		fmt.Fprintln(os.Stderr, "exactly:", err)
	}
	os.Exit(exitCode(err))
}
