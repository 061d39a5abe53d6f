// Command statusengine is the operator's tool for a statusengine collector:
// encode and decode report names, send a report the way ModSecurity does,
// import the log of the original tinydns collector, move records between
// databases as NDJSON, and back a database up.
//
//	go build -o statusengine ./build/statusengine
//	statusengine help
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	run     func(env *env, args []string) error
}

// env is what a subcommand writes to; tests swap it.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	tty            bool // stdout is a terminal: show progress
}

var commands []*command

func init() {
	commands = []*command{
		{"encode", "BEACON [--epoch N|--no-epoch] [--zone Z] [--label-len 32|30] [--fields A,B,...|--corefile FILE]", "print the DNS name ModSecurity resolves for a beacon", runEncode},
		{"decode", "NAME [--zone Z] [--fields A,B,...|--corefile FILE]", "print the fields of a report name, or why it is not one", runDecode},
		{"send", "BEACON [--server HOST:PORT] [--zone Z] [--epoch N|--no-epoch] [--label-len 32|30] [--timeout D] [--fields A,B,...|--corefile FILE]", "report a beacon as ModSecurity does: one A query, RD set, no EDNS", runSend},
		{"import-tinydns", "--db FILE [--zone Z]... [--geoip FILE|--no-geo] [--quiet] LOG...", "store the reports in tinydns query logs (- for standard input)", runImportTinydns},
		{"export", "(--db FILE | --api URL [--token T]) [--from T] [--to T] [--format ndjson|csv] [--out FILE]", "write records as NDJSON or CSV", runExport},
		{"import", "(--db FILE [--corefile FILE --zone Z,...] | --api URL) [--token T] [--source-token T] [FILE|URL|-]...", "store NDJSON records; importing twice stores nothing new", runImport},
		{"backup", "(--db FILE | --api URL [--token T]) --out FILE", "write a consistent copy of a database", runBackup},
		{"check", "--db FILE", "read every page and record of a database, report damage (exit 1)", runCheck},
		{"salvage", "--db FILE --out NEW", "copy every readable record of a damaged database into a new one", runSalvage},
		{"version", "", "print the build's version and commit, and the CoreDNS it carries", runVersion},
	}
}

// errUsage is returned after the usage has been printed.
var errUsage = errors.New("usage")

func main() {
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, tty: isTerminal(os.Stdout)}
	os.Exit(run(e, os.Args[1:]))
}

// run executes one command line and returns the exit status: 0 success,
// 1 failure, 2 bad usage.
func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	name := args[0]
	if name == "-version" || name == "--version" {
		name, args = "version", []string{"version"}
	}
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return run(e, []string{c.name, "--help"})
			}
		}
		usage(e.stdout)
		return 0
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "statusengine: unknown command %q\n\n", name)
		usage(e.stderr)
		return 2
	}
	err := c.run(e, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(e.stderr, "statusengine %s: %v\n", c.name, err)
	return 1
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: statusengine COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nstatusengine COMMAND --help describes one command.\n")
}
