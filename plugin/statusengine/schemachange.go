package statusengine

import (
	"sync"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// A zone's schema may change between reloads only by adding fields at the
// end (docs/schemas.md, "Changing a schema"). The store does not keep the
// schema yet, so a change across a restart goes unseen; across a reload
// within one process the previous schema of each zone is known, and a
// change of another kind is logged as a warning. The reload goes on: the
// operator may mean it (no report of a custom schema is stored yet).
var (
	schemasMu sync.Mutex
	schemas   = map[string]*codec.Schema{} // by zone, as last started
)

// noteSchema records the schema of zones and returns, for each zone whose
// previous schema the new one does not extend, why.
func noteSchema(zones []string, s *codec.Schema) map[string]error {
	if s == nil {
		s = codec.ModSecurity
	}
	schemasMu.Lock()
	defer schemasMu.Unlock()
	var changed map[string]error
	for _, z := range zones {
		if old := schemas[z]; old != nil {
			if err := s.Extends(old); err != nil {
				if changed == nil {
					changed = map[string]error{}
				}
				changed[z] = err
			}
		}
		schemas[z] = s
	}
	return changed
}
