// Package schemaconf reads the schema property of a Corefile's statusengine
// block, for the plugin (parse.go) and for the operator tool (statusengine
// encode/decode/send --corefile), so that both read a schema the same way.
// It depends on the Corefile lexer only, not on CoreDNS's server.
//
//	schema modsecurity          # the built-in schema, the default
//	schema {
//	    fields NAME...          # the beacon's comma-separated fields, in order
//	    min_fields N            # optional: the fewest a beacon may carry (default: all)
//	    version FIELD           # optional: compared as versions
//	    platform FIELD          # optional: the platform breakdown
//	    id FIELD                # required: the anonymous installation id
//	}
//
// The rules of fields and roles are codec.NewSchema's. Every error names the
// line of the property at fault ("FILE:LINE - Error during parsing: schema:
// ..."), those found once the block is read (no id field) the schema line.
package schemaconf

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// Parse reads the schema property whose arguments args the dispenser has
// just read (RemainingArgs stops before a block's brace) and, for a block,
// the block.
func Parse(d *caddyfile.Dispenser, args []string) (*codec.Schema, error) {
	file, line := d.File(), d.Line()
	if !d.NextArg() {
		if len(args) != 1 || args[0] != codec.ModSecurityName {
			return nil, d.Errf("schema: want %s, or a block { fields ...; id FIELD }", codec.ModSecurityName)
		}
		return codec.ModSecurity, nil
	}
	if d.Val() != "{" {
		return nil, d.Errf("schema: unexpected %q", d.Val())
	}
	if len(args) != 0 {
		return nil, d.Errf("schema: a block takes no argument, got %q", strings.Join(args, " "))
	}
	var spec codec.SchemaSpec
	seen := map[string]bool{}
	closed := false
	for d.Next() {
		property := d.Val()
		if property == "}" {
			closed = true
			break
		}
		if seen[property] {
			return nil, d.Errf("schema: %s specified more than once", property)
		}
		seen[property] = true
		if err := parseProperty(d, &spec, property, d.RemainingArgs()); err != nil {
			return nil, err
		}
	}
	if !closed {
		return nil, d.Errf("schema: block is not closed")
	}
	if spec.Fields == nil {
		return nil, fmt.Errorf("%s:%d - Error during parsing: schema: no fields (fields NAME...)", file, line)
	}
	s, err := codec.NewSchema(spec)
	if err != nil {
		return nil, fmt.Errorf("%s:%d - Error during parsing: schema: %v", file, line, err)
	}
	return s, nil
}

// parseProperty reads one property of the schema block into spec. Roles
// come after fields, so that a role naming no field is an error on its own
// line.
func parseProperty(d *caddyfile.Dispenser, spec *codec.SchemaSpec, property string, vals []string) error {
	switch property {
	case "fields":
		if err := codec.CheckFieldNames(vals); err != nil {
			return d.Errf("schema: fields: %v", err)
		}
		spec.Fields = vals
	case "min_fields":
		if len(vals) != 1 {
			return d.Errf("schema: min_fields needs one number")
		}
		n, err := strconv.Atoi(vals[0])
		if err != nil || n < 1 || n > codec.MaxFields {
			return d.Errf("schema: min_fields %q is not a number from 1 to %d", vals[0], codec.MaxFields)
		}
		spec.MinFields = n
	case "version", "platform", "id":
		if len(vals) != 1 {
			return d.Errf("schema: %s needs one field name", property)
		}
		if spec.Fields == nil {
			return d.Errf("schema: %s: fields must come first", property)
		}
		if !slices.Contains(spec.Fields, vals[0]) {
			return d.Errf("schema: %s: %q is not one of the fields (%s)", property, vals[0], strings.Join(spec.Fields, " "))
		}
		switch property {
		case "version":
			spec.Version = vals[0]
		case "platform":
			spec.Platform = vals[0]
		default:
			spec.ID = vals[0]
		}
	case "separator":
		return d.Errf("schema: separator: the fields of a beacon are always separated by a comma (a dot separates DNS labels)")
	default:
		return d.Errf("schema: unknown property %q", property)
	}
	return nil
}

// FromCorefile returns the schema of zone in the Corefile at path: the one
// of the statusengine block that serves zone (its ZONES arguments, else
// its server block's keys), ModSecurity when that block names none. It
// reads the schema property only; the rest of the block is not checked.
func FromCorefile(path, zone string) (*codec.Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blocks, err := caddyfile.Parse(path, f, nil)
	if err != nil {
		return nil, err
	}
	want := dns.CanonicalName(zone)
	for _, sb := range blocks {
		toks := sb.Tokens["statusengine"]
		if len(toks) == 0 {
			continue
		}
		d := caddyfile.NewDispenserTokens(path, toks)
		d.Next() // the directive
		zones := d.RemainingArgs()
		if len(zones) == 0 {
			zones = sb.Keys
		}
		if !slices.ContainsFunc(zones, func(k string) bool { return keyZone(k) == want }) {
			continue
		}
		for d.NextBlock() {
			property := d.Val()
			args := d.RemainingArgs()
			if property == "schema" {
				return Parse(&d, args)
			}
			skipBlock(&d)
		}
		return codec.ModSecurity, nil
	}
	return nil, fmt.Errorf("%s: no statusengine block serves zone %s", path, want)
}

// keyZone is the zone a server block key or a ZONES argument names:
// without a scheme (dns://) or port, lower case, absolute.
func keyZone(k string) string {
	if _, rest, ok := strings.Cut(k, "://"); ok {
		k = rest
	}
	if i := strings.LastIndexByte(k, ':'); i >= 0 && !strings.Contains(k[:i], ":") {
		k = k[:i]
	}
	return dns.CanonicalName(k)
}

// skipBlock steps over the block that follows a property's arguments (api
// and peers have one), so that its properties are not read as the
// statusengine block's.
func skipBlock(d *caddyfile.Dispenser) {
	if !d.NextArg() {
		return
	}
	if d.Val() != "{" {
		return
	}
	for depth := 1; depth > 0 && d.Next(); {
		switch d.Val() {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
}
