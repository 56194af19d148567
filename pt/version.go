package pt

import "runtime/debug"

// Version is a program's version: linked when set (the Makefile's -ldflags "-X main.version=..."),
// else the main module's version from the build information when it has one (as after
// "go install MODULE@v1.2.3"), else "dev".
func Version(linked string) string {
	bi, ok := debug.ReadBuildInfo()
	return versionFrom(linked, bi, ok)
}

func versionFrom(linked string, bi *debug.BuildInfo, ok bool) string {
	switch {
	case linked != "":
		return linked
	case ok && bi.Main.Version != "" && bi.Main.Version != "(devel)":
		return bi.Main.Version
	}
	return "dev"
}
