package statusengine

// Ready implements ready.Readiness: ready once the store is open.
func (se *StatusEngine) Ready() bool { return se.store != nil }
