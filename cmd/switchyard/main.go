// Command switchyard is a Segment-compatible event router: a gateway for the
// Segment Tracking API that writes every call durably to a log (Kafka or an
// embedded on-disk log), read by destinations.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `switchyard: a Segment-compatible event router

Usage:
  switchyard serve   [flags]   gateway and router in one process, on the embedded log or on Kafka
  switchyard gateway [flags]   the gateway alone, for Kafka deployments with many gateways
  switchyard router  [flags]   the routers alone, for Kafka deployments with many routers
  switchyard replay  [flags]   deliver a range of the log, or the dead letters, to one destination again
  switchyard tail    [flags]   print the messages of a topic as JSON lines
  switchyard sync --source NAME [--full] [--since TIME] [flags]
                               run a hubspot source's catch-up or full sync, in the running
                               switchyard (--addr) or in this process
  switchyard transform [--destination NAME] [flags] < messages
                               print the HubSpot requests the messages would make, with no network
  switchyard hubspot-sandbox [flags]   serve the in-memory HubSpot simulator

Run "switchyard COMMAND -h" for a command's flags.
`

func main() {
	setProcs(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	stopProfiles := startProfiles(os.Getenv, os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfiles()
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, hubspotParts)
}

// runWith runs the command args name, with the hubspot sources' syncers
// and email pollers built by parts, and returns its exit status.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, parts sourceParts) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve", "gateway", "router":
		err = serve(ctx, args[0], args[1:], stderr, parts)
	case "replay":
		err = replay(ctx, args[1:], stdout, stderr)
	case "sync":
		err = syncSource(ctx, args[1:], stderr, parts)
	case "tail":
		err = tail(ctx, args[1:], stdout, stderr)
	case "transform":
		err = transform(ctx, args[1:], os.Stdin, stdout, stderr)
	case "hubspot-sandbox":
		err = hubspotSandbox(ctx, args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "switchyard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchyard %s: %v\n", args[0], err)
		var interrupted interruptedError
		if errors.As(err, &interrupted) {
			return interruptedStatus
		}
		return 1
	}
	return 0
}

// interruptedStatus is the exit status of a command stopped by a signal
// before it finished, as a shell reports an end by SIGINT.
const interruptedStatus = 130

// interruptedError is a command's end by a signal before it finished; its
// exit status is interruptedStatus.
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return e.msg }
