package recipes

import (
	"context"
	"strings"
	"testing"

	"github.com/prefgpt/prefgpt/rundir"
)

// Training the conditional model and the MLE baseline side by side must give exactly the runs that one
// after the other gives: the two trainings share no state (backends, contexts, files, RNGs).
func TestConcurrentTrainingMatchesSequential(t *testing.T) {
	if testing.Short() {
		t.Skip("trains four models")
	}
	objectives := []string{rundir.Conditional, rundir.MLE}
	losses := map[bool]map[string][]float64{}
	for _, concurrent := range []bool{false, true} {
		run := prepareRun(t, objectives...)
		o := ReproduceOptions{Common: Common{Run: run, Preset: "test", Backend: "go"}, ConcurrentTraining: concurrent}
		o.Train = testTrainOptions(run, "", 6)
		if err := trainObjectives(context.Background(), o, o.Common, objectives); err != nil {
			t.Fatalf("concurrent=%v: %v", concurrent, err)
		}
		dir, _ := rundir.Open(run)
		losses[concurrent] = map[string][]float64{}
		for _, obj := range objectives {
			rows, err := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics(obj))
			if err != nil || len(rows) != 6 {
				t.Fatalf("concurrent=%v %s: %d metric rows, %v", concurrent, obj, len(rows), err)
			}
			for _, r := range rows {
				losses[concurrent][obj] = append(losses[concurrent][obj], r.Loss)
			}
		}
	}
	for _, obj := range objectives {
		seq, con := losses[false][obj], losses[true][obj]
		for i := range seq {
			if seq[i] != con[i] {
				t.Errorf("%s step %d: loss %v side by side, %v one after the other", obj, i+1, con[i], seq[i])
			}
		}
	}
	if losses[false][rundir.Conditional][5] == losses[false][rundir.MLE][5] {
		t.Error("the conditional and MLE models trained on the same data: the test would not see a mix-up")
	}
}

// A training that fails stops the one beside it, and its error is the one returned.
func TestConcurrentTrainingStopsOnFirstError(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	run := prepareRun(t, rundir.Conditional) // no MLE data: that training fails at once
	o := ReproduceOptions{Common: Common{Run: run, Preset: "test", Backend: "go"}, ConcurrentTraining: true}
	o.Train = testTrainOptions(run, "", 200)
	err := trainObjectives(context.Background(), o, o.Common, []string{rundir.Conditional, rundir.MLE})
	if err == nil {
		t.Fatal("no error with the MLE data missing")
	}
	if want := `"data" stage first`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say to run the data stage", err)
	}
	dir, _ := rundir.Open(run)
	rows, _ := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics(rundir.Conditional))
	if len(rows) >= 200 {
		t.Errorf("the conditional training ran all %d steps instead of stopping", len(rows))
	}
}
