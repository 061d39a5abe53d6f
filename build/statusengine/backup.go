package main

import (
	"fmt"
	"io"
	"strings"
)

func runBackup(e *env, args []string) error {
	fs := newFlags(e, "backup")
	dbPath := fs.String("db", "", "database file, when no server runs on it")
	apiURL := fs.String("api", "", "base URL of a running server's API, e.g. http://localhost:8053")
	tokenF := tokenFlag(fs)
	out := fs.String("out", "", "output file, - for standard output")
	pos, err := parse(e, fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case *out == "":
		return usageError(fs, "--out is required")
	case (*dbPath == "") == (*apiURL == ""):
		return usageError(fs, "give exactly one of --db and --api")
	}

	var n int64
	if *apiURL != "" {
		resp, err := apiGet(strings.TrimSuffix(*apiURL, "/")+"/api/v1/backup", token(*tokenF))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		err = writeOutput(e, *out, func(w io.Writer) error {
			n, err = io.Copy(w, resp.Body)
			if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
				err = fmt.Errorf("backup cut short: %d of %d bytes", n, resp.ContentLength)
			}
			return err
		})
		if err != nil {
			return err
		}
	} else {
		st, err := openDB(*dbPath, true)
		if err != nil {
			return err
		}
		defer st.Close()
		err = writeOutput(e, *out, func(w io.Writer) error {
			n, err = st.Backup(w, nil)
			return err
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "backup: %d bytes written\n", n)
	return nil
}
