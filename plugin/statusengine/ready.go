package statusengine

// Ready implements ready.Readiness: ready once the store is open and not
// down (a damaged file: the zone is still answered, nothing is stored).
func (se *StatusEngine) Ready() bool { return se.store != nil && se.store.Down() == nil }
