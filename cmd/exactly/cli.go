package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/exactly-dev/exactly/config"
)

const usage = `exactly: a Kafka-to-Kafka stream processor with exactly-once output

usage:
  exactly run -c pipeline.yaml [flags]       run a pipeline as one member of its group
  exactly validate -c pipeline.yaml [flags]  check a pipeline and settings without a network
                                             (--brokers: also its topics' partition counts)
  exactly describe -c pipeline.yaml [flags]  print the compiled topology (--format text|mermaid)
  exactly redrive --dlq topic --brokers ... send dead-lettered records back, exactly once
  exactly broker [flags]                     run the embedded broker on its own
  exactly help <command>                     flags of a command
`

// usageError is a mistake on the command line or in a file: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, rest, stdout, stderr)
	case "validate":
		return validateCmd(ctx, rest, stdout, stderr)
	case "describe":
		return describeCmd(ctx, rest, stdout, stderr)
	case "redrive":
		return redriveCmd(ctx, rest, stdout, stderr)
	case "broker":
		return brokerCmd(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}

func newFlags(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

var errHelp = errors.New("help requested")

func newLogger(s *config.Settings, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(s.Log.Level)))
	opts := &slog.HandlerOptions{Level: lv}
	if s.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
