// Package pt implements version 1 of Tor's pluggable transport protocol
// (pt-spec.txt) and the Extended ORPort (ext-orport-spec.txt).
package pt
