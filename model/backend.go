package model

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // registers "go"
)

// Backend choice. NewBackend never downloads anything and never waits on the network: the XLA/PJRT
// backend is used only when a plugin is already installed; otherwise the pure-Go backend ("go") runs,
// after one line on stderr that says why.

// goDefaultConfig avoids simplego's worker-pool deadlock: with the default (bounded) pool, parallel op
// execution waits for workers that nested matmul tasks also wait for. "ops_sequential" runs one op at a
// time (each op still splits its own work across the cores), so no task ever waits on a full pool.
const goDefaultConfig = "ops_sequential"

// PJRTInstallHint tells the user how to get the faster XLA backend.
const PJRTInstallHint = "install a PJRT CPU plugin (github.com/gomlx/go-xla releases) into ~/.local/lib/go-xla " +
	"or set PJRT_PLUGIN_LIBRARY_PATH to its directory, then use -backend xla"

// BackendNames lists the backend names NewBackend accepts (a name may be followed by ":config", e.g.
// "go:ops_sequential" or "xla:cpu").
func BackendNames() []string {
	names := backends.List()
	slices.Sort(names)
	return names
}

var noticeOnce sync.Once

// NewBackend returns the backend called name ("go", "xla", optionally with ":config"). name "" picks:
// $GOMLX_BACKEND if set, else XLA if a PJRT plugin is installed, else pure Go (with a one-line notice on
// stderr). The pure-Go backend always gets a configuration that avoids its worker-pool deadlock.
func NewBackend(name string) (backends.Backend, error) {
	InstallDotGeneralGradient()
	source := "the backend flag"
	if name == "" {
		if env, ok := os.LookupEnv(backends.ConfigEnvVar); ok && env != "" {
			name, source = env, "$"+backends.ConfigEnvVar
		}
	}
	if name == "" {
		plugins := xlaPlugins()
		if len(plugins) > 0 {
			b, err := newBackend("xla", "")
			if err == nil {
				return b, nil
			}
			noticeOnce.Do(func() {
				fmt.Fprintf(os.Stderr, "prefgpt: PJRT plugin %v found but XLA failed (%v); using the pure-Go backend\n", plugins, err)
			})
		} else {
			noticeOnce.Do(func() {
				fmt.Fprintf(os.Stderr, "prefgpt: no PJRT plugin found, using the slower pure-Go backend (to speed up: %s)\n", PJRTInstallHint)
			})
		}
		return newBackend("go", "")
	}
	backendName, config, _ := strings.Cut(name, ":")
	if !slices.Contains(backends.List(), backendName) {
		return nil, fmt.Errorf("unknown backend %q (from %s): valid backends are %s", backendName, source,
			strings.Join(BackendNames(), ", "))
	}
	if isXLAName(backendName) && !filepathIsAbs(config) && len(xlaPlugins()) == 0 {
		return nil, fmt.Errorf("backend %q (from %s): no PJRT plugin installed (searched $PJRT_PLUGIN_LIBRARY_PATH, "+
			"~/.local/lib/go-xla, /usr/local/lib/go-xla and the system library paths); %s; or use -backend go",
			backendName, source, PJRTInstallHint)
	}
	return newBackend(backendName, config)
}

func isXLAName(name string) bool {
	return name == "xla" || name == "stablehlo" || name == "hlo" || name == "shlo"
}

func filepathIsAbs(p string) bool { return strings.HasPrefix(p, "/") }

// newBackend constructs a registered backend, turning the constructor's panics and typed-nil results into
// errors.
func newBackend(backendName, config string) (b backends.Backend, err error) {
	if backendName == "go" {
		config = goConfig(config)
	}
	full := backendName
	if config != "" {
		full += ":" + config
	}
	if perr := CatchPanic(func() { b, err = backends.NewWithConfig(full) }); perr != nil {
		return nil, fmt.Errorf("creating backend %q: %w", full, perr)
	}
	if err != nil {
		return nil, fmt.Errorf("creating backend %q: %w", full, err)
	}
	if b == nil || (reflect.ValueOf(b).Kind() == reflect.Pointer && reflect.ValueOf(b).IsNil()) {
		return nil, fmt.Errorf("creating backend %q: no backend returned", full)
	}
	return b, nil
}

// goConfig adds the deadlock-safe execution mode to a user's simplego config unless it already chooses one.
func goConfig(config string) string {
	if strings.Contains(config, "ops_") || strings.Contains(config, "parallelism") {
		return config
	}
	if config == "" {
		return goDefaultConfig
	}
	return config + "," + goDefaultConfig
}
