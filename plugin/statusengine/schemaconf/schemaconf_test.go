package schemaconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// Two zones, each with its schema, sharing one database and one API: the
// layout docs/schemas.md shows.
const twoZones = `status.modsecurity.org:1053 {
    statusengine {
        db statusengine.db
        api localhost:8053 {
            token secret
            cache 1M
        }
        schema modsecurity
    }
}

dns://status.example.org:1053 {
    statusengine {
        answer 192.0.2.1
        db statusengine.db
        api localhost:8053 {
            token secret
            cache 1M
        }
        schema {
            fields product version os arch id   # in order
            version version
            platform os
            id id
        }
        title "Example status"
    }
}

other.example:1053 {
    statusengine a.example b.example {
        peers https://ns2.example.net { interval 1m }
    }
}
`

func TestFromCorefile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(twoZones), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		zone    string
		want    string // the schema's String()
		wantErr string
	}{
		{"status.modsecurity.org", "modsecurity", ""},
		{"STATUS.example.org.", "fields product version os arch id; version version; platform os; id id", ""},
		{"b.example", "modsecurity", ""}, // the directive's ZONES, no schema property
		{"other.example", "", "no statusengine block serves zone other.example."},
		{"example.org", "", "no statusengine block serves zone example.org."},
	}
	for _, tc := range tests {
		s, err := FromCorefile(path, tc.zone)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("FromCorefile(%s) = %v, want %q", tc.zone, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("FromCorefile(%s): %v", tc.zone, err)
			continue
		}
		if s.String() != tc.want {
			t.Errorf("FromCorefile(%s) = %s, want %s", tc.zone, s, tc.want)
		}
	}
	if s, _ := FromCorefile(path, "status.modsecurity.org"); s != codec.ModSecurity {
		t.Errorf("the built-in schema is not codec.ModSecurity")
	}

	bad := strings.Replace(twoZones, "id id\n", "id uid\n", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromCorefile(path, "status.example.org"); err == nil || !strings.Contains(err.Error(), `Corefile:24 - Error during parsing: schema: id: "uid" is not one of the fields`) {
		t.Errorf("a bad schema: %v, want the line and the property", err)
	}
	if _, err := FromCorefile(filepath.Join(t.TempDir(), "none"), "x"); err == nil {
		t.Error("a missing Corefile: no error")
	}
}

// The Corefiles docs/schemas.md shows read as it says: the example schema
// for status.example.org, ModSecurity's for status.modsecurity.org.
func TestDocCorefiles(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/schemas.md")
	if err != nil {
		t.Fatal(err)
	}
	const want = "fields product version os arch id; version version; platform os; id id"
	n := 0
	for i, block := range strings.Split(string(doc), "```") {
		if i%2 == 0 || !strings.Contains(block, "statusengine {") {
			continue
		}
		n++
		path := filepath.Join(t.TempDir(), "Corefile")
		if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := FromCorefile(path, "status.example.org")
		if err != nil || s.String() != want {
			t.Errorf("docs/schemas.md Corefile %d: %v, %v; want %s\n%s", n, s, err, want, block)
		}
		if strings.Contains(block, "status.modsecurity.org") {
			if s, err := FromCorefile(path, "status.modsecurity.org"); err != nil || s != codec.ModSecurity {
				t.Errorf("docs/schemas.md Corefile %d: ModSecurity's zone reads %v, %v", n, s, err)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d Corefiles in docs/schemas.md, want 2", n)
	}
}
