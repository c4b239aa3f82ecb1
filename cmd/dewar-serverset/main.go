// Command dewar-serverset reads ZooKeeper serversets (any Finagle-format
// serverset, not only dewar's):
//
//	dewar-serverset ls    --zk HOST:PORT[,HOST:PORT] [--json] PATH
//	dewar-serverset watch --zk HOST:PORT[,HOST:PORT] [--json] PATH
//
// ls prints each member once; watch prints the whole serverset again after
// every change until interrupted. A member that cannot be parsed is printed
// with its error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dewarhq/dewar/announcer"
)

const usage = `usage: dewar-serverset ls|watch --zk HOST:PORT[,HOST:PORT] [--json] [--timeout 10s] [--auth-config FILE] PATH`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	cmd, zk, path, authConfig string
	json                      bool
	timeout                   time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	if len(args) == 0 {
		return o, errors.New("no command")
	}
	o.cmd, args = args[0], args[1:]
	if o.cmd != "ls" && o.cmd != "watch" {
		return o, fmt.Errorf("unknown command %q", o.cmd)
	}
	fs := flag.NewFlagSet("dewar-serverset "+o.cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.zk, "zk", "", "ZooKeeper ensemble, host:port[,host:port]")
	fs.BoolVar(&o.json, "json", false, "print JSON, one object per listing")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for a ZooKeeper session")
	fs.StringVar(&o.authConfig, "auth-config", "", "Aurora zkauth JSON whose auth entries to present (for protected serversets)")
	// Flags may come before or after PATH.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return o, fmt.Errorf("want exactly one serverset PATH, got %d", len(positional))
	}
	o.path = positional[0]
	if o.zk == "" {
		return o, errors.New("--zk is required")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dewar-serverset: %v\n%s\n", err, usage)
		return 2
	}
	conn, err := connect(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "dewar-serverset: %v\n", err)
		return 1
	}
	defer conn.Close()
	show := func(entries []announcer.Entry) error {
		if o.json {
			return writeJSON(stdout, o.path, entries)
		}
		return writeText(stdout, o.path, entries)
	}
	if o.cmd == "ls" {
		entries, err := announcer.ListMembers(conn, o.path)
		if err == nil {
			err = show(entries)
		}
		if err != nil {
			fmt.Fprintf(stderr, "dewar-serverset: %v\n", err)
			return 1
		}
		return 0
	}
	if err := announcer.WatchMembers(ctx, conn, o.path, show); err != nil {
		fmt.Fprintf(stderr, "dewar-serverset: %v\n", err)
		return 1
	}
	return 0
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func connect(ctx context.Context, o options) (*zk.Conn, error) {
	servers := strings.Split(o.zk, ",")
	conn, events, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.zk, err)
	}
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-timer.C:
			conn.Close()
			return nil, fmt.Errorf("no ZooKeeper session from %s within %v; check --zk", o.zk, o.timeout)
		case <-ctx.Done():
			conn.Close()
			return nil, ctx.Err()
		}
	}
	if o.authConfig != "" {
		cfg, err := announcer.LoadAuthConfig(o.authConfig)
		if err != nil {
			conn.Close()
			return nil, err
		}
		for _, a := range cfg.Auth {
			if err := conn.AddAuth(a.Scheme, []byte(a.Credential)); err != nil {
				conn.Close()
				return nil, fmt.Errorf("authenticate with scheme %q: %w", a.Scheme, err)
			}
		}
	}
	return conn, nil
}
