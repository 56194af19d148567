package tests

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const modulePath = "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket"

// TestModuleVersion installs the client as "go install MODULE/client@v0.1.0" does, offline,
// from a module proxy made here (GOPROXY=file://): without the Makefile's -X main.version,
// -version reports the module's version from the build information.
func TestModuleVersion(t *testing.T) {
	proxy := t.TempDir()
	dir := filepath.Join(proxy, modulePath, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"list":        "v0.1.0\n",
		"v0.1.0.info": `{"Version":"v0.1.0","Time":"2026-01-01T00:00:00Z"}`,
		"v0.1.0.mod":  string(gomod),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeModuleZip(t, filepath.Join(dir, "v0.1.0.zip"), "..", modulePath+"@v0.1.0/")

	gobin := t.TempDir()
	cmd := exec.Command("go", "install", modulePath+"/client@v0.1.0")
	cmd.Dir = t.TempDir() // outside the module
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOPROXY=file://"+filepath.ToSlash(proxy), "GOSUMDB=off",
		"GOFLAGS=-modcacherw", "GOMODCACHE="+t.TempDir(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(gobin, "client"), "-version").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "websocket-client v0.1.0" {
		t.Errorf("-version: %q, %v; want websocket-client v0.1.0", got, err)
	}
	// Built in the source tree without -X, as TestMain builds them: "dev", or with VCS stamping
	// (Go 1.24, unless -buildvcs=false) a version derived from the commit; never "(devel)".
	out, err = exec.Command(program("websocket-client"), "-version").Output()
	if got := strings.TrimSpace(string(out)); err != nil || !regexp.MustCompile(`^websocket-client (dev|v\S+)$`).MatchString(got) {
		t.Errorf("-version of a source-tree build: %q, %v; want websocket-client dev", got, err)
	}
}

// writeModuleZip writes a module zip of the Go files and go.mod under root, each named prefix +
// its path, leaving out tests/ and bench/ (a module of its own).
func writeModuleZip(t *testing.T, file, root, prefix string) {
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z := zip.NewWriter(f)
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, path)
		switch {
		case err != nil:
			return err
		case d.IsDir() && (rel == "tests" || rel == "bench" || strings.HasPrefix(d.Name(), ".") && rel != "."):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(rel, ".go") && rel != "go.mod":
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w, err := z.Create(prefix + filepath.ToSlash(rel))
		if err == nil {
			_, err = w.Write(b)
		}
		return err
	})
	if err == nil {
		err = z.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestVetFlagsNewerStandardLibrary shows that "make test" keeps the code buildable with Go 1.22
// without a Go 1.22 toolchain: go vet (run by "make test") has the stdversion analysis, which
// flags a use of a standard-library symbol newer than go.mod's go line. Here, slices.Repeat
// (Go 1.23) in a module that says go 1.22, as this one does.
func TestVetFlagsNewerStandardLibrary(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil || !regexp.MustCompile(`(?m)^go 1\.22$`).Match(gomod) {
		t.Fatalf("go.mod has no \"go 1.22\" line (%v): the README promises Go 1.22", err)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil || !regexp.MustCompile(`(?m)^test:(?:\n\t.*)*\n\t\$\(GO\) vet \./\.\.\.\n`).Match(makefile) {
		t.Fatalf("the Makefile's test target does not run \"$(GO) vet ./...\" (%v)", err)
	}
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod": "module example.com/newer\n\ngo 1.22\n",
		"newer.go": "package newer\n\nimport \"slices\"\n\n" +
			"// Twice is new in Go 1.23.\nvar Twice = slices.Repeat([]int{1}, 2)\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "vet", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=", "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if want := "slices.Repeat requires go1.23 or later (module is go1.22)"; err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("go vet on a go 1.22 module that uses slices.Repeat: %v, %q; want a failure saying %q", err, out, want)
	}
}
