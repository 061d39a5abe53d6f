package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"
)

// newFlags returns a flag set for c that prints c's synopsis on --help.
func newFlags(e *env, c string) *flag.FlagSet {
	fs := flag.NewFlagSet(c, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cmd := lookup(c)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\n%s.\n", cmd.synopsis(), strings.ToUpper(cmd.summary[:1])+cmd.summary[1:])
		if help, ok := helpText[c]; ok {
			fmt.Fprintf(out, "\n%s\n", strings.TrimSpace(help))
		}
		if hasFlags(fs) {
			fmt.Fprintf(out, "\nFlags:\n")
			printFlags(out, fs)
		}
	}
	return fs
}

// synopsis is the command line the usage and docs/operating.md show.
func (c *command) synopsis() string {
	return strings.TrimSpace("statusengine " + c.name + " " + c.args)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printFlags is flag.PrintDefaults in the --flag form the synopses use (the
// flag package accepts both -flag and --flag, and prints -flag).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "0s" && def != "[]" {
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					def = strconv.Quote(def)
				}
			}
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

// tokenFlag defines the --token flag of a command that talks to an API. Its
// default is $STATUSENGINE_TOKEN, read after parsing (see token), so that
// the help never prints a secret from the environment.
func tokenFlag(fs *flag.FlagSet) *string {
	return fs.String("token", "", "API token (default $STATUSENGINE_TOKEN)")
}

// token is the --token value, else $STATUSENGINE_TOKEN.
func token(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv("STATUSENGINE_TOKEN")
}

// parse parses flags placed anywhere among the arguments (flag stops at the
// first argument otherwise) and returns the positional ones; after "--"
// everything is positional. --help prints the usage to standard output.
func parse(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		for _, a := range args {
			if a == "--" {
				break
			}
			if a == "-h" || a == "-help" || a == "--help" {
				fs.SetOutput(e.stdout)
				fs.Usage()
				return nil, flag.ErrHelp
			}
		}
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, errUsage // flag has printed the error and usage
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError prints msg and the usage of fs and returns errUsage.
func usageError(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(fs.Output(), "statusengine %s: %s\n\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return errUsage
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// helpText is the longer description of each command.
var helpText = map[string]string{
	"encode": `
Prints the name bit for bit as ModSecurity builds it: the beacon in unpadded
upper-case base32, a dot after every 32 characters (30 on Windows builds), the
client epoch label (now, unless --epoch or --no-epoch), then the zone.

The beacon is checked against the zone's schema, and a warning says when the
collector will reject it: ModSecurity's by default, a custom one with
--fields product,version,os,id (the field named id is the installation id,
else the last one) or --corefile FILE (the schema of --zone in that Corefile).
See docs/schemas.md.`,
	"decode": `
Decodes a report name (any letter case, with or without the trailing dot) and
prints its fields. A name that is not a report prints the reason and exits 1;
a partial name from QNAME minimisation is one of those. With --fields or
--corefile the name is decoded with that schema (see encode) and each field
is printed by name.`,
	"send": `
Resolves the beacon's name with one UDP query of type A, recursion desired and
no EDNS, as ModSecurity's gethostbyname call does: through --server, or the
nameservers of /etc/resolv.conf in order. Exits 0 when an A record comes back,
1 otherwise, with the reason. The Go package behind it is
github.com/statusengine/statusengine/client. Any beacon is sent; with
--fields or --corefile (see encode) a warning says when it does not fit the
zone's schema and the collector will count it malformed.`,
	"import-tinydns": `
Reads logs written by tinydns (the original collector): lines of
"hexip:hexport:hexid R qtype name", optionally prefixed by a multilog/tai64n
"@" TAI64N label or by tai64nlocal's local time. Every answered (+) query
whose name decodes as a report is stored with its resolver (the logged
client address) and its time: the line's timestamp, else the name's client
epoch label, else the log file's modification time; and its location, looked
up from the resolver address in --geoip or the embedded country database
(the original collector never located anything). Reports already in the
database (or seen earlier in the logs) count as duplicates, so a log can be
imported again safely. Lines that are not reports (tinydns's own messages,
unanswered queries, QNAME minimisation steps) count as ignored; malformed
lines and names as rejected.

The server must not be running on the same database: stop it, import, start
it, or import into a copy and merge with export/import.`,
	"export": `
Writes the records received in [--from, --to], oldest first. Times are unix
seconds, RFC 3339, or YYYY-MM-DD (UTC).

With --db the database is opened directly, so the server must not be running
on it; --format ndjson (the default) writes one JSON object a line, the
layout import reads back exactly. With --api a running server streams its
GET /api/v1/export (--token when its API has one): NDJSON in the API's report
layout, which import also reads. --format csv writes the API's CSV either
way (one header line, then a row a record).`,
	"import": `
Reads NDJSON as export writes it, from files, http(s) URLs (a peer's export
endpoint; --token for its API token) or - for standard input, and stores each
record with its original receive time, resolver, ECS subnet and location.
Records already in the database count as duplicates: importing the same data
twice, or the same report collected by two servers, stores it once. The
counts are printed at the end; when any line was rejected the command exits
with status 1 (the rest is stored all the same).

A zone of a custom schema needs its schema in the database before its
records are taken (a database the server wrote has it); for a new file, name
the zones with --zone Z,... and give the server's Corefile with --corefile:
each zone's schema is read from it and kept in the file, and a schema that
contradicts the file's is an error naming the zone.

With --api instead of --db the records go to a running server's
POST /api/v1/import, so one server of a zone can take in what the others
collected without being stopped, e.g.
  statusengine import --api http://ns1:8053 http://ns2:8053/api/v1/export?from=0`,
	"check": `
Reads the database file without mapping or writing it: every page (the
structure bbolt relies on), then every record, dictionary row and rollup.
Prints what is damaged and exits 1 when anything is; exits 0 for a sound
file. The server must be stopped (or check a copy): bbolt locks the file.
A server whose file is damaged keeps answering its zone, stores nothing,
and says in its log to run this.`,
	"salvage": `
Copies every record that can be read from a damaged database (--db, read
page by page, never written) into a new database (--out, must not exist),
rebuilding its dictionaries, de-duplication and rollups. Prints how many
records it copied and how many were lost: unreadable records, skipped
damaged pages, and the difference from the count the old file kept. Then
stop the server, put the new file in place of the old, start it. Rollups of
records that retention had already deleted are not in the new file.`,
	"version": `
Prints the main module's version, the commit the binary was built from
(with "(modified)" when the tree had uncommitted changes), the commit's time,
and the CoreDNS and Go versions, as the Go toolchain recorded them in the
binary. A binary built without version control information (go run, a tree
without .git) says "unknown". coredns -version names the same build.`,
	"backup": `
Writes a consistent copy of the bbolt database to --out (- for standard
output), from one read transaction. With --db the database is opened
directly, so the server must be stopped; with --api the running server
streams the copy from GET /api/v1/backup.`,
}
