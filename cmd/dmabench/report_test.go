package main

import (
	"encoding/json"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/report"
)

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium: .ci/run installs Debian's chromium package")
	}
	t.Skip("no Chromium on this machine (apt-get install chromium)")
	return ""
}

func TestReportRendersOffline(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "run", "-w", "usb-ehci,netrx,mixed-pressure", "-a", "dmapool,slab-direct,coherent", "-p", "x86,iommu,sa1111", "-s", "2", "-n", "20000", "--out", dir, "--name", "r"); code != 0 {
		t.Fatal(errs)
	}
	page := filepath.Join(dir, "report.html")
	if code, _, errs := run(t, "report", filepath.Join(dir, "r.json"), "-o", page); code != 0 {
		t.Fatal(errs)
	}
	data, _ := os.ReadFile(page)
	if regexp.MustCompile(`(?i)(https?:|//[a-z0-9.-]+\.[a-z]{2,}|<script|<link|<img)`).Match(data) {
		t.Fatal("the report refers to something outside itself")
	}
	if n := strings.Count(string(data), "<svg"); n < 6 {
		t.Fatalf("%d charts", n)
	}
	// Markdown links the SVGs written beside it.
	md := filepath.Join(dir, "report.md")
	if code, _, errs := run(t, "report", filepath.Join(dir, "r.json"), "-o", md); code != 0 {
		t.Fatal(errs)
	}
	mdata, _ := os.ReadFile(md)
	// What the drivers saw: SCSI requeues, failed URB submits and failed
	// maps on the SA-1111 under pressure get a table; pool errors, zero
	// everywhere, do not.
	for _, want := range []string{"## scsi_requeues by scenario", "## urb_submit_failures by scenario", "## map_failures by scenario"} {
		if !strings.Contains(string(mdata), want) {
			t.Errorf("the Markdown report lacks %q", want)
		}
	}
	if strings.Contains(string(mdata), "pool_errors by") {
		t.Error("a table of pool errors that are zero everywhere")
	}
	links := regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`).FindAllSubmatch(mdata, -1)
	if len(links) < 6 {
		t.Fatalf("%d images in the Markdown report", len(links))
	}
	for _, l := range links {
		if _, err := os.Stat(filepath.Join(dir, string(l[1]))); err != nil {
			t.Fatalf("image %s: %v", l[1], err)
		}
	}

	// Render the page and check the charts are there: their bar colours
	// must cover a good part of the screenshot.
	bin := chromium(t)
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1200,4000", "--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours := []string{report.AllocatorColor("dmapool"), report.AllocatorColor("slab-direct"), report.AllocatorColor("coherent")}
	counts := colourCounts(img, colours)
	for i, n := range counts {
		if n < 2000 {
			t.Fatalf("colour %s covers %d pixels: the charts did not render (%v)", colours[i], n, counts)
		}
	}
	checkChartGeometry(t, bin, dir, page)
}

// checkChartGeometry renders the report with a script of the test's own
// (the report has none) that measures, in the browser, every chart: each
// legend, label and bar must lie inside its SVG, each allocator must have
// one colour across every chart, and a refused cell must be labelled.
func checkChartGeometry(t *testing.T, bin, dir, page string) {
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	probe := `<script>
const out = {outside: [], colours: {}, refused: 0, charts: 0};
for (const svg of document.querySelectorAll("svg")) {
  out.charts++;
  const box = svg.getBoundingClientRect();
  for (const el of svg.querySelectorAll("text, rect, circle, path, polyline")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < box.left - 1 || r.top < box.top - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1)
      out.outside.push(el.tagName + " " + (el.textContent || "").slice(0, 40));
  }
  for (const r of svg.querySelectorAll("rect.legend")) {
    const name = r.nextElementSibling.textContent, fill = r.getAttribute("fill");
    (out.colours[name] = out.colours[name] || []).includes(fill) || out.colours[name].push(fill);
  }
  for (const b of svg.querySelectorAll("rect.bar")) {
    const name = b.dataset.allocator, fill = b.getAttribute("fill");
    (out.colours[name] = out.colours[name] || []).includes(fill) || out.colours[name].push(fill);
  }
  out.refused += svg.querySelectorAll("text.refused").length;
}
const pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>`
	probed := filepath.Join(dir, "probed.html")
	os.WriteFile(probed, []byte(strings.Replace(string(data), "</body>", probe+"</body>", 1)), 0o644)
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile2"), "--window-size=1200,4000", "--dump-dom", "file://"+probed)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	m := regexp.MustCompile(`<pre id="probe">([^<]*)</pre>`).FindSubmatch(dom)
	if m == nil {
		t.Fatalf("the probe did not run:\n%.2000s", dom)
	}
	var got struct {
		Outside []string
		Colours map[string][]string
		Refused int
		Charts  int
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &got); err != nil {
		t.Fatal(err)
	}
	if got.Charts < 6 {
		t.Fatalf("%d charts measured", got.Charts)
	}
	if len(got.Outside) > 0 {
		t.Errorf("%d elements outside their chart: %v", len(got.Outside), got.Outside)
	}
	for name, cs := range got.Colours {
		if len(cs) != 1 {
			t.Errorf("%s has %d colours: %v", name, len(cs), cs)
		}
	}
	if len(got.Colours) < 3 {
		t.Errorf("colours of %d allocators, want 3: %v", len(got.Colours), got.Colours)
	}
	if got.Refused == 0 {
		t.Error("slab-direct behind the IOMMU is refused, and no chart says so")
	}
}

func colourCounts(img image.Image, hex []string) []int {
	type rgb struct{ r, g, b uint8 }
	want := make([]rgb, len(hex))
	for i, h := range hex {
		var c rgb
		for k, p := range []*uint8{&c.r, &c.g, &c.b} {
			var v uint8
			for _, ch := range h[1+2*k : 3+2*k] {
				v = v*16 + uint8(strings.IndexRune("0123456789abcdef", ch))
			}
			*p = v
		}
		want[i] = c
	}
	counts := make([]int, len(hex))
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
		for x := bnd.Min.X; x < bnd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			for i, w := range want {
				if abs(int(r>>8)-int(w.r)) < 6 && abs(int(g>>8)-int(w.g)) < 6 && abs(int(b>>8)-int(w.b)) < 6 {
					counts[i]++
				}
			}
		}
	}
	return counts
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
