package model

// GoMLX checkpoints of everything in the context (model weights, optimizer state, step counter, RNG),
// written with pkg/ml/context/checkpoints but made crash-safe.
//
// checkpoints.Handler.Save writes <base>.bin then <base>.json in place, without fsync, and lists
// checkpoints by their .json: a crash while the .json is being written leaves a truncated newest
// checkpoint that makes every later load fail. So SaveCheckpoint lets the handler write into a staging
// directory inside dir, syncs both files, renames the .bin and then the .json into dir (the .json
// appearing is the commit point: rename is atomic), syncs dir, and only then deletes old checkpoints.
// A crash at any point leaves the previous checkpoints intact and loadable.
//
// LoadCheckpoint checks the newest checkpoint before GoMLX sees it (JSON well-formed, every variable's
// size consistent with its shape and dtype, data length matching, gzip CRC) so a damaged file gives an
// error naming it instead of a panic deep inside the loader.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
)

const (
	checkpointPrefix     = "checkpoint-"
	checkpointStagingDir = ".staging-"
	// gomlxBinHeader starts a gzip-compressed checkpoint data file: the magic, one length byte, "gzip".
	gomlxBinHeader = "gomlx_checkpoints"
)

// checkpointCountPattern reads the sequence number GoMLX puts in checkpoint names: checkpoint-n0000042-….
var checkpointCountPattern = regexp.MustCompile(`^checkpoint-n(\d+)-`)

// SaveCheckpoint saves every variable of ctx (and its params) as a new GoMLX checkpoint in dir,
// atomically, then deletes the oldest checkpoints so that at most keep remain (keep ≤ 0 keeps all).
func SaveCheckpoint(ctx *context.Context, dir string, keep int) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("SaveCheckpoint: %w", err)
	}
	// Values a lazily-loading checkpoint handler still holds (variables the program has not touched
	// yet) belong to the model too: pull them into ctx so they are saved.
	if handler, ok := ctx.Loader().(*checkpoints.Handler); ok {
		var pending []string
		for name := range handler.LoadedVariables() {
			pending = append(pending, name)
		}
		for _, name := range pending {
			scope, varName := context.VariableScopeAndNameFromParameterName(name)
			ctx.GetVariableByScopeAndName(scope, varName)
		}
	}

	staging, err := os.MkdirTemp(dir, checkpointStagingDir+"*")
	if err != nil {
		return fmt.Errorf("SaveCheckpoint: %w", err)
	}
	defer os.RemoveAll(staging)

	// The handler attaches itself to ctx as its variable loader; keep the previous one. GoMLX's Save
	// also creates a /global_step variable to name the file: remove it again if it was not there.
	previousLoader := ctx.Loader()
	hadGlobalStep := ctx.InspectVariableIfLoaded(context.RootScope, "global_step") != nil
	defer func() {
		ctx.SetLoader(previousLoader)
		if !hadGlobalStep {
			_ = ctx.DeleteVariable(context.RootScope, "global_step")
		}
	}()
	if perr := CatchPanic(func() {
		var handler *checkpoints.Handler
		if handler, err = checkpoints.Build(ctx).Dir(staging).Keep(-1).Done(); err == nil {
			err = handler.Save()
		}
	}); perr != nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("SaveCheckpoint %s: %w", dir, err)
	}

	staged, err := listCheckpoints(staging)
	if err != nil || len(staged) != 1 {
		return fmt.Errorf("SaveCheckpoint %s: expected one staged checkpoint, found %v (%v)", dir, staged, err)
	}
	existing, err := listCheckpoints(dir)
	if err != nil {
		return fmt.Errorf("SaveCheckpoint: %w", err)
	}
	// Renumber after the newest checkpoint already in dir (GoMLX sorts checkpoints by name).
	next := 0
	for _, name := range existing {
		if match := checkpointCountPattern.FindStringSubmatch(name); match != nil {
			if n, err := strconv.Atoi(match[1]); err == nil && n >= next {
				next = n + 1
			}
		}
	}
	base := fmt.Sprintf("%sn%07d-%s", checkpointPrefix, next, checkpointCountPattern.ReplaceAllString(staged[0], ""))
	for _, suffix := range []string{checkpoints.BinDataSuffix, checkpoints.JsonNameSuffix} { // .json last: it commits
		from := filepath.Join(staging, staged[0]+suffix)
		if err := syncFile(from); err != nil {
			return fmt.Errorf("SaveCheckpoint: %w", err)
		}
		if err := os.Rename(from, filepath.Join(dir, base+suffix)); err != nil {
			return fmt.Errorf("SaveCheckpoint: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("SaveCheckpoint: %w", err)
	}
	return pruneCheckpoints(dir, keep)
}

// listCheckpoints returns the base names (without suffix) of the committed checkpoints in dir, oldest
// first. A missing dir has none.
func listCheckpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing checkpoints in %s: %w", dir, err)
	}
	var names []string
	for _, entry := range entries {
		name := entry.Name()
		if !entry.IsDir() && strings.HasPrefix(name, checkpointPrefix) && strings.HasSuffix(name, checkpoints.JsonNameSuffix) {
			names = append(names, strings.TrimSuffix(name, checkpoints.JsonNameSuffix))
		}
	}
	sort.Strings(names)
	return names, nil
}

// pruneCheckpoints deletes all but the newest keep checkpoints (.json first, so a half-deleted one is
// never listed), data files whose .json is gone (left by a crash between the two renames), and staging
// directories left by crashed saves.
func pruneCheckpoints(dir string, keep int) error {
	names, err := listCheckpoints(dir)
	if err != nil {
		return err
	}
	if keep > 0 && len(names) > keep {
		for _, name := range names[:len(names)-keep] {
			for _, suffix := range []string{checkpoints.JsonNameSuffix, checkpoints.BinDataSuffix} {
				if err := os.Remove(filepath.Join(dir, name+suffix)); err != nil && !os.IsNotExist(err) {
					return fmt.Errorf("removing old checkpoint: %w", err)
				}
			}
		}
		names = names[len(names)-keep:]
	}
	committed := map[string]bool{}
	for _, name := range names {
		committed[name] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing checkpoints in %s: %w", dir, err)
	}
	for _, entry := range entries {
		name := entry.Name()
		switch {
		case entry.IsDir() && strings.HasPrefix(name, checkpointStagingDir):
			_ = os.RemoveAll(filepath.Join(dir, name))
		case strings.HasPrefix(name, checkpointPrefix) && strings.HasSuffix(name, checkpoints.BinDataSuffix) &&
			!committed[strings.TrimSuffix(name, checkpoints.BinDataSuffix)]:
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	return syncDir(dir)
}

// LoadCheckpoint restores every variable (and param) of the newest checkpoint in dir into ctx,
// replacing values already there. found is false, with no error, when dir has no checkpoint. A damaged
// newest checkpoint is an error naming its files (delete them to fall back to the previous one).
func LoadCheckpoint(ctx *context.Context, dir string) (found bool, err error) {
	names, err := listCheckpoints(dir)
	if err != nil {
		return false, fmt.Errorf("LoadCheckpoint: %w", err)
	}
	if len(names) == 0 {
		return false, nil
	}
	newest := names[len(names)-1]
	if err := loadCheckpointFiles(ctx, dir, newest); err != nil {
		hint := ""
		if len(names) > 1 {
			hint = fmt.Sprintf(" (remove its files to fall back to %s)", names[len(names)-2])
		}
		return false, fmt.Errorf("LoadCheckpoint %s: %w%s", filepath.Join(dir, newest), err, hint)
	}
	return true, nil
}

// checkpointIndex mirrors the JSON GoMLX writes next to the data, for validation.
type checkpointIndex struct {
	Variables []struct {
		ParameterName string
		Dimensions    []int
		DType         dtypes.DType
		Pos, Length   int
	}
}

// loadCheckpointFiles validates one checkpoint, then hands it to the GoMLX loader with immediate
// loading (every variable is in ctx on return; nothing stays pending in a loader).
func loadCheckpointFiles(ctx *context.Context, dir, base string) error {
	jsonPath := filepath.Join(dir, base+checkpoints.JsonNameSuffix)
	binPath := filepath.Join(dir, base+checkpoints.BinDataSuffix)
	indexJSON, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var index checkpointIndex
	if err := json.Unmarshal(indexJSON, &index); err != nil {
		return fmt.Errorf("%s is corrupt: %w", jsonPath, err)
	}
	data, err := readCheckpointData(binPath)
	if err != nil {
		return err
	}
	position := 0
	for _, v := range index.Variables {
		elementSize := dtypeSize(v.DType)
		if elementSize <= 0 {
			return fmt.Errorf("%s: variable %q has unsupported dtype %s", jsonPath, v.ParameterName, v.DType)
		}
		count := 1
		for _, d := range v.Dimensions {
			// The 2^40 bound keeps count from overflowing; no real variable is near it.
			if d < 0 || (d > 0 && count > (1<<40)/d) {
				return fmt.Errorf("%s: variable %q has invalid shape %v", jsonPath, v.ParameterName, v.Dimensions)
			}
			count *= d
		}
		if v.Pos != position || v.Length != count*elementSize || v.Pos+v.Length > len(data) {
			return fmt.Errorf("%s: variable %q (%s%v) at bytes [%d, %d) does not fit the %d bytes of %s (truncated?)",
				jsonPath, v.ParameterName, v.DType, v.Dimensions, v.Pos, v.Pos+v.Length, len(data), binPath)
		}
		position += v.Length
	}
	if position != len(data) {
		return fmt.Errorf("%s has %d bytes, its index %s describes %d", binPath, len(data), jsonPath, position)
	}

	previousLoader := ctx.Loader()
	defer ctx.SetLoader(previousLoader) // nothing is left to load lazily: detach the handler again
	var loadErr error
	if perr := CatchPanic(func() {
		_, loadErr = checkpoints.Build(ctx).FromEmbed(string(indexJSON), data).Immediate().Done()
	}); perr != nil {
		loadErr = perr
	}
	if loadErr != nil {
		return fmt.Errorf("loading %s: %w", jsonPath, loadErr)
	}
	return nil
}

// readCheckpointData returns the uncompressed variable bytes of a GoMLX .bin file: either raw, or the
// header "gomlx_checkpoints" + length byte + "gzip" followed by a gzip stream (whose CRC the reader checks).
func readCheckpointData(binPath string) ([]byte, error) {
	raw, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(raw, []byte(gomlxBinHeader)) {
		return raw, nil
	}
	rest := raw[len(gomlxBinHeader):]
	if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
		return nil, fmt.Errorf("%s: truncated header", binPath)
	}
	if format := string(rest[1 : 1+int(rest[0])]); format != "gzip" {
		return nil, fmt.Errorf("%s: unknown compression %q", binPath, format)
	}
	reader, err := gzip.NewReader(bytes.NewReader(rest[1+int(rest[0]):]))
	if err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", binPath, err)
	}
	data, err := io.ReadAll(reader)
	if err != nil {
		return nil, fmt.Errorf("%s is corrupt or truncated: %w", binPath, err)
	}
	return data, nil
}

// dtypeSize is the bytes per element of a dtype read from a file, 0 when it is not a whole-byte dtype
// GoMLX knows.
func dtypeSize(dtype dtypes.DType) (size int) {
	defer func() {
		if recover() != nil {
			size = 0
		}
	}()
	if dtype == dtypes.InvalidDType || dtype.GoType() == nil {
		return 0
	}
	return dtype.Size()
}

// syncFile flushes a file's contents to disk.
func syncFile(path string) error {
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return file.Close()
}
