// Package advisory reads vulnerability advisories in the OSV format
// (https://ossf.github.io/osv-schema/) and tells which reported versions
// they list as affected.
//
// An advisory's affected packages map to fields of the built-in ModSecurity
// beacon (Fields: modsec, server by product, pcre, libxml, lua, apr) through
// the table Packages; a package the table does not name is ignored. Versions
// compare as numeric dotted versions (Version): a reported value that does
// not parse is unknown, never affected. Only what upstream lists counts:
// distributions backport fixes without changing the version a program
// reports, so "affected" here means "runs a version that upstream lists as
// affected", and an advisory may carry a note on known backports
// (database_specific.backport_note).
//
// Files are bounded (MaxFileBytes, MaxRecords, MaxDepth, MaxEvents): a
// hostile file is an error, never a long parse. The default set (Default)
// is embedded from data/, each record citing its source in references.
package advisory
