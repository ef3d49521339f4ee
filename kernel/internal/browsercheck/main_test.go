package main

import (
	"strings"
	"testing"
)

func TestParseChartStatesAndConsoleErrors(t *testing.T) {
	dom := `<div class="prefgpt-block"><h3>Training loss vs tokens seen</h3>
<div id="prefgpt-chart-0a" class="prefgpt-chart" style="x" _echarts_instance_="ec_1" data-prefgpt-chart="ok"><div><canvas width="9"></canvas></div></div>
<script>...</script></div>
<div class="prefgpt-block"><h3>Mean toxicity</h3>
<div id="prefgpt-chart-0b" class="prefgpt-chart" style="x" data-prefgpt-chart="no-echarts">ECharts is not loaded</div>
<script>...</script></div>
<div class="prefgpt-block"><h3>Max toxicity</h3>
<div id="prefgpt-chart-0c" class="prefgpt-chart" style="x" data-prefgpt-chart="ok"></div>
<script>...</script></div>
<div class="prefgpt-block"><h3>LR</h3>
<div id="prefgpt-chart-0d" class="prefgpt-chart" style="x"></div>
<script>...</script></div>`
	logs := `[1:1:1125/1:INFO:CONSOLE:1] "Uncaught ReferenceError: echarts is not defined", source: file:///p.html (3)
[1:1:1125/1:INFO:CONSOLE:39334] "Loaded moment locale en", source: http://x/main.js (1)`
	charts, problems := parse(dom, logs)
	want := []chart{{"Training loss vs tokens seen", "ok"}, {"Mean toxicity", "no-echarts"}, {"Max toxicity", "no canvas"}, {"LR", "not initialised"}}
	if len(charts) != len(want) {
		t.Fatalf("charts %+v, want %+v", charts, want)
	}
	for i := range want {
		if charts[i] != want[i] {
			t.Errorf("chart %d: %+v, want %+v", i, charts[i], want[i])
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "echarts is not defined") {
		t.Errorf("problems %q: want only the uncaught error", problems)
	}
}
