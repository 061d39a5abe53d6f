package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/statusengine/statusengine/client"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/schemaconf"
)

// schemaFlags are the --fields and --corefile flags of encode, decode and
// send: which schema a beacon is checked against.
type schemaFlags struct {
	fields, corefile *string
}

func addSchemaFlags(fs *flag.FlagSet) schemaFlags {
	return schemaFlags{
		fields:   fs.String("fields", "", "the beacon's field names, comma-separated, for a custom schema (default ModSecurity's)"),
		corefile: fs.String("corefile", "", "take the schema of --zone from this Corefile"),
	}
}

// schema is the schema the flags name: ModSecurity's when neither is given.
// --fields makes the field named id the id (else the last one), the one
// named version the version and the one named platform (else os) the
// platform: only the Corefile can say more (min_fields, other roles).
func (f schemaFlags) schema(fs *flag.FlagSet, zone string) (*codec.Schema, error) {
	switch {
	case *f.fields != "" && *f.corefile != "":
		return nil, usageError(fs, "--fields and --corefile exclude each other")
	case *f.corefile != "":
		s, err := schemaconf.FromCorefile(*f.corefile, zone)
		if err != nil {
			return nil, fmt.Errorf("--corefile: %v", err)
		}
		return s, nil
	case *f.fields == "":
		return codec.ModSecurity, nil
	}
	names := strings.Split(*f.fields, ",")
	spec := codec.SchemaSpec{Fields: names, ID: names[len(names)-1]}
	for _, n := range names {
		switch n {
		case "id":
			spec.ID = n
		case "version":
			spec.Version = n
		case "platform":
			spec.Platform = n
		case "os":
			if spec.Platform == "" {
				spec.Platform = n
			}
		}
	}
	s, err := codec.NewSchema(spec)
	if err != nil {
		return nil, usageError(fs, "--fields: %v", err)
	}
	return s, nil
}

func runEncode(e *env, args []string) error {
	fs := newFlags(e, "encode")
	epoch := fs.Int64("epoch", 0, "client epoch label (default now)")
	noEpoch := fs.Bool("no-epoch", false, "leave the epoch label out, as the 2014 beta did")
	zone := fs.String("zone", client.DefaultZone, "status zone")
	labelLen := fs.Int("label-len", 32, "characters per data label: 32, or 30 as Windows builds")
	sf := addSchemaFlags(fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "want one BEACON argument, got %d", len(pos))
	}
	schema, err := sf.schema(fs, *zone)
	if err != nil {
		return err
	}
	if *labelLen < 1 || *labelLen > 63 {
		return usageError(fs, "--label-len %d: want 1 to 63", *labelLen)
	}
	if *epoch < 0 {
		return usageError(fs, "--epoch %d: want a unix time", *epoch)
	}
	warnMisfit(e, schema, pos[0])
	ep := *epoch
	switch {
	case *noEpoch:
		ep = -1
	case ep == 0:
		ep = time.Now().Unix()
	}
	name := codec.EncodeLabels(pos[0], ep, *zone, *labelLen)
	fmt.Fprintln(e.stdout, name)
	if len(name) > 254 {
		return fmt.Errorf("the name has %d octets, more than DNS allows: the client's resolver would refuse it", len(name)-1)
	}
	return nil
}

func runDecode(e *env, args []string) error {
	fs := newFlags(e, "decode")
	zone := fs.String("zone", client.DefaultZone, "status zone")
	sf := addSchemaFlags(fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "want one NAME argument, got %d", len(pos))
	}
	schema, err := sf.schema(fs, *zone)
	if err != nil {
		return err
	}
	if !schema.IsModSecurity() {
		return decodeCustom(e, schema, pos[0], *zone)
	}
	rep, err := codec.Decode(pos[0], *zone)
	if err != nil {
		return notReport(err)
	}
	w := e.stdout
	format := "current"
	if rep.Format == codec.Format2014 {
		format = "2014 beta"
	}
	line := func(k, v string) { fmt.Fprintf(w, "%-14s %s\n", k+":", v) }
	line("beacon", rep.Beacon)
	line("format", format)
	line("modsec", rep.Modsec)
	line("server", rep.Server)
	line("apr", rep.APRCompiled+" / "+rep.APRLoaded+"  (compiled / loaded)")
	line("pcre", rep.PCRECompiled+" / "+rep.PCRELoaded+"  (compiled / loaded)")
	if rep.Format == codec.Format2014 {
		line("lua", rep.Lua+" / "+rep.LuaLoaded+"  (compiled / loaded)")
		line("libxml", rep.Libxml+" / "+rep.LibxmlLoaded+"  (compiled / loaded)")
	} else {
		line("lua", rep.Lua)
		line("libxml", rep.Libxml)
	}
	line("id", rep.ID+idNote(rep.ID))
	if rep.HasEpoch {
		line("epoch", fmt.Sprintf("%d (%s)", rep.Epoch, time.Unix(rep.Epoch, 0).UTC().Format(time.RFC3339)))
	} else {
		line("epoch", "none (2014 format)")
	}
	return nil
}

// notReport is decode's error for a name that is not a report.
func notReport(err error) error {
	if errors.Is(err, codec.ErrPartial) {
		return fmt.Errorf("not a report: %v (a QNAME minimisation step or the zone apex: answered, never stored)", err)
	}
	return fmt.Errorf("not a report: %v", err)
}

// decodeCustom prints a report name of a custom schema: each field by name,
// its role beside it.
func decodeCustom(e *env, s *codec.Schema, name, zone string) error {
	rep, err := codec.DecodeSchema(s, name, zone)
	if err != nil {
		return notReport(err)
	}
	roles := map[string]string{s.Version(): "  (version)", s.Platform(): "  (platform)", s.ID(): "  (installation id)"}
	width := 14
	for _, f := range s.Fields() {
		width = max(width, len(f)+1)
	}
	line := func(k, v string) { fmt.Fprintf(e.stdout, "%-*s %s\n", width, k+":", v) }
	line("beacon", rep.Beacon)
	line("schema", s.String())
	for i, f := range s.Fields() {
		if i >= len(rep.Values) {
			line(f, "(absent: the beacon has "+fmt.Sprint(len(rep.Values))+" fields)")
			continue
		}
		line(f, rep.Values[i]+roles[f])
	}
	if rep.HasEpoch {
		line("epoch", fmt.Sprintf("%d (%s)", rep.Epoch, time.Unix(rep.Epoch, 0).UTC().Format(time.RFC3339)))
	} else {
		line("epoch", "none")
	}
	return nil
}

// warnMisfit warns when the collector would reject beacon: it does not fit
// the schema (ModSecurity's grammars, or a custom schema's bounds).
func warnMisfit(e *env, s *codec.Schema, beacon string) {
	if _, err := codec.ParseSchema(s, beacon); err != nil {
		fmt.Fprintf(e.stderr, "warning: the collector will reject this beacon: %v\n", err)
	}
}

func idNote(id string) string {
	switch {
	case id == "no unique id":
		return "  (the client could not compute one)"
	case len(id) == 2:
		return "  (last byte only: ModSecurity 2.9.x's overlapping sprintf)"
	case len(id) == 40:
		return "  (SHA-1)"
	}
	return ""
}

func runSend(e *env, args []string) error {
	fs := newFlags(e, "send")
	server := fs.String("server", "", "DNS server HOST:PORT (default: the nameservers of /etc/resolv.conf)")
	zone := fs.String("zone", client.DefaultZone, "status zone")
	epoch := fs.Int64("epoch", 0, "client epoch label (default now)")
	noEpoch := fs.Bool("no-epoch", false, "leave the epoch label out")
	labelLen := fs.Int("label-len", 32, "characters per data label: 32, or 30 as Windows builds")
	timeout := fs.Duration("timeout", 0, "timeout of each attempt (default: resolv.conf's, 5s)")
	sf := addSchemaFlags(fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError(fs, "want one BEACON argument, got %d", len(pos))
	}
	schema, err := sf.schema(fs, *zone)
	if err != nil {
		return err
	}
	warnMisfit(e, schema, pos[0])
	opts := client.Options{Server: *server, Zone: *zone, Epoch: *epoch, LabelLen: *labelLen, Timeout: *timeout}
	if *noEpoch {
		opts.Epoch = -1
	}
	res, err := client.Send(contextWithSignals(), pos[0], opts)
	if res != nil && res.Name != "" {
		fmt.Fprintf(e.stdout, "name:   %s\n", res.Name)
	}
	if err != nil {
		if errors.Is(err, client.ErrNoAddress) {
			return fmt.Errorf("report not taken: %v", err)
		}
		return fmt.Errorf("no answer: %v", err)
	}
	addrs := make([]string, len(res.Addrs))
	for i, a := range res.Addrs {
		addrs[i] = a.String()
	}
	fmt.Fprintf(e.stdout, "server: %s\nanswer: %s (%s)\n", res.Server, strings.Join(addrs, " "), res.RTT.Round(time.Microsecond))
	return nil
}
