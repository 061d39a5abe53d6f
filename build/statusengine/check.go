package main

import (
	"errors"
	"fmt"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// errDamaged makes check exit 1 after printing its report.
var errDamaged = errors.New("the database is damaged")

func runCheck(e *env, args []string) error {
	fs := newFlags(e, "check")
	dbPath := fs.String("db", "", "database file (never written; the server may run on it only if it is stopped)")
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError(fs, "unexpected argument %q", pos[0])
	}
	if *dbPath == "" {
		return usageError(fs, "--db is required")
	}
	rep, err := store.Check(*dbPath)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(e.stdout, p)
	}
	fmt.Fprintf(e.stdout, "%s: %d pages, %d records readable, %d unreadable, %d problems\n",
		*dbPath, rep.Pages, rep.Records, rep.Unreadable, len(rep.Problems))
	if rep.LogRefused != "" && rep.Unreadable == 0 && len(rep.Problems) == 1 {
		// The database is sound: only its log is not one the server writes.
		fmt.Fprintf(e.stdout, "move the write-ahead log away (mv %s %s.refused): until then the server answers each report after its commit\n",
			wal.LogPath(*dbPath), wal.LogPath(*dbPath))
		return errLogRefused
	}
	if !rep.OK() {
		fmt.Fprintf(e.stdout, "run: statusengine salvage --db %s --out NEW.db\n", *dbPath)
		return errDamaged
	}
	return nil
}

// errLogRefused makes check exit 1 when only the write-ahead log is wrong.
var errLogRefused = errors.New("the write-ahead log is refused")

func runSalvage(e *env, args []string) error {
	fs := newFlags(e, "salvage")
	dbPath := fs.String("db", "", "damaged database file (read only, never written)")
	out := fs.String("out", "", "new database file to create")
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case *dbPath == "" || *out == "":
		return usageError(fs, "--db and --out are required")
	}
	st, err := store.Salvage(*dbPath, *out, store.Options{})
	if err != nil {
		return err
	}
	missing := "unknown (the damaged file's count is unreadable)"
	if m := st.Missing(); m >= 0 {
		missing = fmt.Sprint(m)
	}
	fmt.Fprintf(e.stdout, "salvaged %d records into %s; lost: %d unreadable, %d damaged page subtrees skipped; missing against the old count: %s\n",
		st.Records, *out, st.Lost, st.Skipped, missing)
	return nil
}
