package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/exactly-dev/exactly/broker"
)

func brokerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", stderr)
	port := fs.Int("port", 9092, "port to listen on at 127.0.0.1 (0: a free port)")
	dataDir := fs.String("data-dir", "", "persist the log here, so a restarted broker keeps its data (default: memory only)")
	partitions := fs.Int("partitions", 3, "partitions of auto-created topics and of --topic without a count")
	topics := fs.StringArray("topic", nil, "create a topic at start, as name or name:partitions (repeatable)")
	logLevel := fs.String("log-level", "warn", "broker log level: error, warn")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(*logLevel))); err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	b, err := broker.Start(broker.Options{Port: *port, DataDir: *dataDir, Partitions: *partitions, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	for _, t := range *topics {
		name, n := t, int32(*partitions)
		if i := strings.LastIndexByte(t, ':'); i > 0 {
			p, err := strconv.Atoi(t[i+1:])
			if err != nil || p < 1 {
				return usageError{fmt.Errorf("--topic %q: want name or name:partitions", t)}
			}
			name, n = t[:i], int32(p)
		}
		if err := broker.CreateTopics(ctx, b.Addrs(), n, name); err != nil {
			return err
		}
	}
	// The address goes to stdout, alone on its line, for scripts and tests.
	fmt.Fprintln(stdout, strings.Join(b.Addrs(), ","))
	log.Info("embedded broker listening; stop with SIGTERM or Ctrl-C", "addr", strings.Join(b.Addrs(), ","))
	<-ctx.Done()
	return nil
}
