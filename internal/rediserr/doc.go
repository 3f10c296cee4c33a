// Package rediserr is the one place that classifies Redis errors (BUSYGROUP,
// NOGROUP, WRONGTYPE, NOPERM, and which failures are transient), so that no
// other package compares error strings.
package rediserr
