package data

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/gomlx/go-huggingface/hub"
)

// The paper's training data: 39 HF datasets of ~50 000 Pile documents each, already split into
// sentences and scored by Detoxify ("tomekkorbak/detoxify-pile-chunk3-0-50000" …
// "tomekkorbak/detoxify-pile-chunk3-1900000-1950000"; ~1.95M documents, ~3.3B tokens).
const (
	detoxifyPileChunk  = 50000
	detoxifyPileShards = 39
)

// DetoxifyPileRepos returns the ids of the paper's dataset repositories, in order.
func DetoxifyPileRepos() []string {
	repos := make([]string, detoxifyPileShards)
	for i := range repos {
		start := i * detoxifyPileChunk
		repos[i] = fmt.Sprintf("tomekkorbak/detoxify-pile-chunk3-%d-%d", start, start+detoxifyPileChunk)
	}
	return repos
}

// DownloadDetoxifyPile downloads the data files (parquet or JSON lines) of the first `shards`
// dataset repositories (≤ 0 or > 39 means all 39) into cacheDir (HF hub cache layout; "" = the
// HF default cache) and returns their local paths, ready for BuildOptions.Inputs. Files
// already in the cache are not downloaded again. HF_TOKEN, if set, is used for authentication.
// It needs network access to the HF hub; nothing in the tests calls it.
func DownloadDetoxifyPile(cacheDir string, shards int) ([]string, error) {
	repos := DetoxifyPileRepos()
	if shards > 0 && shards < len(repos) {
		repos = repos[:shards]
	}
	var paths []string
	for _, id := range repos {
		repo := hub.New(id).WithType(hub.RepoTypeDataset).WithAuth(os.Getenv("HF_TOKEN"))
		if cacheDir != "" {
			repo = repo.WithCacheDir(cacheDir)
		}
		var files []string
		for name, err := range repo.IterFileNames() {
			if err != nil {
				return paths, fmt.Errorf("listing files of dataset %s: %w", id, err)
			}
			if isRecordFile(name) {
				files = append(files, name)
			}
		}
		if len(files) == 0 {
			return paths, fmt.Errorf("dataset %s has no .parquet or .jsonl(.gz) files", id)
		}
		sort.Strings(files)
		got, err := repo.DownloadFiles(files...)
		if err != nil {
			return paths, fmt.Errorf("downloading dataset %s: %w", id, err)
		}
		paths = append(paths, got...)
	}
	return paths, nil
}

// isRecordFile says whether OpenRecords can read a file with this name.
func isRecordFile(name string) bool {
	lower := strings.ToLower(name)
	for _, ext := range []string{".parquet", ".jsonl", ".jsonl.gz", ".json.gz"} {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return false
}
