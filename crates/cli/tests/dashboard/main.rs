//! The web dashboard in a real browser: `quiver serve` holding the WordNet sample (two
//! imports, so two sealed segments, with field indexes), and headless Chromium driven over the
//! DevTools protocol (`cdp.rs`). The test signs in (a wrong key first), opens the collection,
//! browses points with a filter, opens a point, runs a text search and a filtered one (run
//! with Ctrl+Enter) and checks the results against the REST API and the sample, writes a
//! filter with a JSON mistake and one the server refuses and checks both errors are shown,
//! checks that the read-only key sees a point but cannot delete it, deletes one with the
//! read-write key, and checks the page fits a narrow screen. Screenshots of each page go to
//! `<target>/tmp/dashboard/` (artifacts, not committed; `docs/dashboard.png` is one of them).
//!
//! Needs Chromium (`apt-get install -y chromium`; `QUIVER_CHROMIUM` names another binary) and
//! the model (`scripts/fetch-model`). Without Chromium the test fails under CI (`CI` set,
//! as `.ci/run` does after installing it) and is skipped with a message elsewhere.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod cdp;

use cdp::Browser;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const RW_KEY: &str = "dashboard-rw-key";
const RO_KEY: &str = "dashboard-ro-key";
const VERBS: &str = r#"{"must": [{"key": "pos", "match": {"value": "v"}}]}"#;

fn sample() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet/sample");
    assert!(p.join("base.jsonl").exists(), "{} not found", p.display());
    p
}

/// The browser: `QUIVER_CHROMIUM`, else `chromium` (Debian) or `chromium-browser` on the PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QUIVER_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

fn quiver(data: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "quiver {args:?} failed: {}\n(if the model is missing: run scripts/fetch-model)",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `quiver serve` on a free port, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--port", "0", "--api-key", RW_KEY])
            .args(["--read-only-api-key", RO_KEY])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(u) = line.split("listening on ").nth(1) {
                url = Some(u.trim().to_string());
                break;
            }
        }
        let url =
            url.unwrap_or_else(|| panic!("quiver serve did not start:\n{}", log.lock().unwrap()));
        let drain = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                drain.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server { child, url, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The page, with the steps a user takes on it.
struct Page {
    b: Browser,
    url: String,
    shots: PathBuf,
}

impl Page {
    fn eval(&mut self, e: &str) -> Result<Value, String> {
        self.b.eval(e)
    }

    fn wait(&mut self, condition: &str, what: &str) -> Result<(), String> {
        self.b.wait_for(condition, what)
    }

    fn text(&mut self, selector: &str) -> Result<String, String> {
        let v = self.eval(&format!(
            "(document.querySelector({0}) || {{}}).innerText || ''",
            js(selector)
        ))?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    fn exists(&mut self, selector: &str) -> Result<bool, String> {
        Ok(self.eval(&format!("!!document.querySelector({})", js(selector)))? == Value::Bool(true))
    }

    /// Types `value` into a field (an `input` event follows, as from a keyboard).
    fn fill(&mut self, selector: &str, value: &str) -> Result<(), String> {
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); el.focus(); el.value = {}; el.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
            js(selector),
            js(value)
        ))?;
        Ok(())
    }

    fn click(&mut self, selector: &str) -> Result<(), String> {
        let found = self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return false; el.click(); return true; }})()",
            js(selector)
        ))?;
        if found != Value::Bool(true) {
            return Err(format!("nothing to click at {selector}"));
        }
        Ok(())
    }

    fn go(&mut self, hash: &str) -> Result<(), String> {
        self.eval(&format!("location.hash = {}; true", js(hash)))?;
        Ok(())
    }

    fn shot(&mut self, name: &str) -> Result<(), String> {
        self.b.screenshot(&self.shots.join(format!("{name}.png")))
    }

    /// A REST call from the page's origin with `key`: `[status, body]`.
    fn fetch(&mut self, key: &str, method: &str, path: &str, body: &str) -> Result<Value, String> {
        self.eval(&format!(
            "fetch({}, {{method: {}, headers: {{'api-key': {}, 'content-type': 'application/json'}}, body: {}}}).then(async r => [r.status, await r.json()])",
            js(path),
            js(method),
            js(key),
            if body.is_empty() { "undefined".to_string() } else { js(body) }
        ))
    }

    fn sign_in(&mut self, key: &str) -> Result<(), String> {
        self.wait("document.querySelector('#key')", "the sign-in form")?;
        self.fill("#key", key)?;
        self.click("#connect")?;
        Ok(())
    }

    /// The ids of the search results on the page, top first.
    fn result_ids(&mut self) -> Result<Vec<u64>, String> {
        let v = self.eval(
            "[...document.querySelectorAll('#results-table tbody th')].map(th => Number(th.innerText))",
        )?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default())
    }
}

#[test]
fn dashboard_in_headless_chromium() {
    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is needed for the dashboard test under CI: apt-get install -y chromium (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED dashboard_in_headless_chromium: no chromium on the PATH (apt-get install -y chromium, or set QUIVER_CHROMIUM); CI runs it"
        );
        return;
    };
    let sample = sample();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The collection is declared as embedded from `text` by the built-in model, and the
    // points carry the vectors sentence-transformers made for their texts (`base.fvecs`), so
    // only the test's queries are embedded. Two imports make two sealed segments.
    let base = std::fs::read_to_string(sample.join("base.jsonl")).unwrap();
    let rows: Vec<Value> = base
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (vectors, n, dim) = quiver_formats::read_fvecs(&sample.join("base.fvecs")).unwrap();
    assert_eq!((n, dim), (rows.len(), 384));
    let verbs: BTreeSet<u64> = rows
        .iter()
        .filter(|r| r["pos"] == "v")
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    quiver(&data, &["create", "wn", "--text-field", "text"]);
    quiver(&data, &["index", "wn", "pos", "--type", "keyword"]);
    quiver(&data, &["index", "wn", "gloss_words", "--type", "integer"]);
    let points: Vec<String> = rows
        .iter()
        .zip(vectors.chunks(dim))
        .map(|(row, v)| {
            let mut payload = row.clone();
            payload.as_object_mut().unwrap().remove("id");
            serde_json::json!({"id": row["id"], "vector": v, "payload": payload}).to_string()
        })
        .collect();
    for (i, part) in [&points[..300], &points[300..]].iter().enumerate() {
        let file = dir.path().join(format!("part{i}.jsonl"));
        std::fs::write(&file, part.join("\n")).unwrap();
        quiver(&data, &["import", "wn", file.to_str().unwrap()]);
    }
    let server = Server::start(&data);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let browser = Browser::launch(&chromium, 1200, 860).unwrap_or_else(|e| panic!("{e}"));
    let mut page = Page {
        b: browser,
        url: server.url.clone(),
        shots,
    };
    let outcome = scenario(&mut page, &verbs);
    if outcome.is_err() {
        let _ = page.shot("failure");
    }
    if let Err(e) = outcome {
        panic!(
            "{e}\nscreenshots in {}\nserver log:\n{}",
            page.shots.display(),
            server.log.lock().unwrap()
        );
    }
    assert!(
        page.b.page_errors.is_empty(),
        "the page logged errors: {:?}",
        page.b.page_errors
    );
}

fn scenario(p: &mut Page, verbs: &BTreeSet<u64>) -> Result<(), String> {
    let url = format!("{}/dashboard", p.url);
    p.b.navigate(&url)?;

    // Keyboard: Tab goes from the key field to the Connect button.
    p.wait("document.querySelector('#key')", "the sign-in form")?;
    p.eval("document.querySelector('#key').focus(); true")?;
    p.b.press("Tab", 9, 0)?;
    p.wait(
        "document.activeElement && document.activeElement.id === 'connect'",
        "Tab to move from the key to the Connect button",
    )?;

    // A wrong key is refused with a message; the right one signs in.
    p.sign_in("not-the-key")?;
    p.wait(
        "document.querySelector('#login-error')",
        "the wrong-key message",
    )?;
    let msg = p.text("#login-error")?;
    if !msg.contains("did not accept") {
        return Err(format!("wrong-key message: {msg}"));
    }
    p.shot("01-sign-in")?;
    p.sign_in(RW_KEY)?;
    p.wait(
        "document.querySelector('#collections') && document.querySelector('#collections').innerText.includes('wn')",
        "the collection list",
    )?;
    let access = p.text("#access")?;
    if access != "read-write key" {
        return Err(format!("access badge: {access:?}"));
    }
    p.shot("02-collections")?;

    // The collection: size, segments, field indexes, maintenance, the segment plot.
    p.click("#collections a[href='#/collections/wn']")?;
    p.wait(
        "document.querySelector('#points-count') && document.querySelector('#points-count').innerText === '500'",
        "the collection page with 500 points",
    )?;
    let segments = p.eval("document.querySelectorAll('#segments tbody tr').length")?;
    let sealed = p.eval(
        "[...document.querySelectorAll('#segments tbody tr')].filter(r => r.innerText.includes('sealed')).length",
    )?;
    if sealed.as_u64() != Some(2) {
        return Err(format!(
            "segments: {segments} rows, {sealed} sealed; want 2 sealed"
        ));
    }
    let indexes = p.text("#field-indexes")?;
    if !(indexes.contains("pos") && indexes.contains("keyword") && indexes.contains("gloss_words"))
    {
        return Err(format!("field indexes: {indexes}"));
    }
    if !p.exists("#segment-plot rect")? || p.text("#maintenance")?.is_empty() {
        return Err("no segment plot or maintenance status".into());
    }
    p.shot("03-collection")?;

    // Points: every point, then the verbs, shown as a table.
    p.click("a[href='#/points/wn']")?;
    p.wait(
        "document.querySelectorAll('#points tbody tr').length === 20",
        "the first page of points",
    )?;
    let count = p.text("#count")?;
    if !count.starts_with("500 points") {
        return Err(format!("point count: {count}"));
    }
    p.fill("#filter", VERBS)?;
    p.click("#scroll")?;
    p.wait(
        "(document.querySelector('#count') || {innerText: ''}).innerText.includes('match')",
        "the filtered points",
    )?;
    let count = p.text("#count")?;
    if !count.starts_with(&format!("{} points match", verbs.len())) {
        return Err(format!("verbs counted: {count}; want {}", verbs.len()));
    }
    let pos = p.eval(
        "(() => { const heads = [...document.querySelectorAll('#points thead th')].map(t => t.innerText); const i = heads.indexOf('pos'); return [...document.querySelectorAll('#points tbody tr')].map(r => r.children[i].innerText); })()",
    )?;
    let pos: Vec<&str> = pos
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if pos.len() != 20 || pos.iter().any(|p| *p != "v") {
        return Err(format!("the pos column of the filtered page: {pos:?}"));
    }
    p.shot("04-points")?;

    // One point: its vector's norm and its payload.
    p.click("#points tbody tr:first-child a")?;
    p.wait("document.querySelector('#payload')", "the point page")?;
    let vectors = p.text("#point-vectors")?;
    if !vectors.contains("dense, 384 dimensions") {
        return Err(format!("the point's vectors: {vectors}"));
    }
    let payload: Value = serde_json::from_str(&p.text("#payload")?).map_err(|e| e.to_string())?;
    if payload["pos"] != "v" {
        return Err(format!("the point's payload: {payload}"));
    }
    if !p.exists("#delete")? {
        return Err("the read-write key sees no delete button".into());
    }
    p.shot("05-point")?;

    // A text search, embedded by the server's model: the page shows what the API answers.
    p.go("#/search/wn")?;
    p.wait("document.querySelector('#query')", "the search page")?;
    let query = "to move quickly on foot";
    p.fill("#query", query)?;
    p.fill("#search-filter", "")?;
    p.click("#search")?;
    p.wait(
        "document.querySelectorAll('#results-table tbody tr').length === 10",
        "10 text search results",
    )?;
    let shown = p.result_ids()?;
    let body = format!(
        r#"{{"query": {{"text": {}, "model": "sentence-transformers/all-MiniLM-L6-v2"}}, "limit": 10}}"#,
        js(query)
    );
    let api = p.fetch(RW_KEY, "POST", "/collections/wn/points/query", &body)?;
    let want: Vec<u64> = api[1]["result"]["points"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_u64()).collect())
        .unwrap_or_default();
    if shown != want || want.len() != 10 {
        return Err(format!(
            "text search: page shows {shown:?}, the API answers {want:?}"
        ));
    }
    let bars = p.eval("document.querySelectorAll('#score-plot rect').length")?;
    if bars.as_u64() != Some(10) {
        return Err(format!("score plot: {bars} bars"));
    }
    p.shot("06-search-text")?;

    // The same search with a filter, run from the keyboard (Ctrl+Enter in the filter editor):
    // only verbs, and the per-segment explain output.
    p.fill("#search-filter", VERBS)?;
    p.b.press("Enter", 13, 2)?;
    p.wait(
        "document.querySelector('#explain') && document.querySelector('#h-results').innerText.includes('with the filter')",
        "the filtered results and their explanation",
    )?;
    let shown = p.result_ids()?;
    if shown.len() != 10 || shown.iter().any(|id| !verbs.contains(id)) {
        return Err(format!("filtered search shows {shown:?}; not all verbs"));
    }
    let explain = p.text("#explain")?;
    if explain.matches("segment").count() < 2 || !explain.contains("strategy") {
        return Err(format!("explain output: {explain}"));
    }
    p.shot("07-search-filtered")?;

    // A filter with a JSON mistake: where it is, before anything is sent.
    p.fill(
        "#search-filter",
        "{\"must\": [\n  {\"key\": \"pos\", \"match\": {\"value\": \"v\"}},\n]}",
    )?;
    p.click("#search")?;
    p.wait(
        "!document.querySelector('#search-filter-error').hidden",
        "the JSON error",
    )?;
    let err = p.text("#search-filter-error")?;
    if !err.contains("Line 3, column 1") || !err.contains("expected a value") {
        return Err(format!("JSON error message: {err}"));
    }
    if p.eval("document.querySelector('#search-filter').getAttribute('aria-invalid')")? != "true" {
        return Err("the filter field is not marked invalid".into());
    }
    p.shot("08-bad-filter")?;
    // A filter that is JSON but not a filter the server accepts: its message, shown.
    p.fill(
        "#search-filter",
        r#"{"must": [{"key": "gloss_words", "range": {"gte": "many"}}]}"#,
    )?;
    p.click("#search")?;
    p.wait(
        "document.querySelector('#search-filter-error').innerText.includes('server refused')",
        "the server's filter error",
    )?;
    let err = p.text("#search-filter-error")?;
    if !err.contains("must[0]") {
        return Err(format!("server filter error does not say where: {err}"));
    }

    // The read-only key: sees the point, no delete button, and the server refuses a delete.
    let victim = *verbs.iter().next().ok_or("no verbs")?;
    p.click("#sign-out")?;
    p.sign_in(RO_KEY)?;
    p.wait(
        "document.querySelector('#access').innerText === 'read-only key'",
        "the read-only badge",
    )?;
    p.go(&format!("#/point/wn/{victim}"))?;
    p.wait(
        "document.querySelector('#payload')",
        "the point page (read-only)",
    )?;
    if p.exists("#delete")? || !p.exists("#read-only-note")? {
        return Err("the read-only key is offered a delete".into());
    }
    p.shot("09-read-only-point")?;
    let refused = p.fetch(
        RO_KEY,
        "POST",
        "/collections/wn/points/delete",
        &format!(r#"{{"points": [{victim}]}}"#),
    )?;
    if refused[0] != 403 {
        return Err(format!("read-only delete answered {refused}"));
    }

    // The read-write key deletes it, after a confirmation.
    p.click("#sign-out")?;
    p.sign_in(RW_KEY)?;
    p.wait(
        "document.querySelector('#payload')",
        "the point page (read-write)",
    )?;
    p.click("#delete")?;
    p.wait(
        "!document.querySelector('#confirm').hidden",
        "the confirmation",
    )?;
    p.click("#confirm-delete")?;
    p.wait(
        "(document.querySelector('#delete-status') || {innerText: ''}).innerText.includes('was deleted')",
        "the deletion",
    )?;
    let count = p.fetch(RW_KEY, "POST", "/collections/wn/points/count", "{}")?;
    if count[1]["result"]["count"] != 499 {
        return Err(format!("count after the delete: {count}"));
    }
    // Through the list: setting the hash the page already shows would not reload it.
    p.go("#/points/wn")?;
    p.wait(
        "document.querySelector('table#points')",
        "the point list after the delete",
    )?;
    p.go(&format!("#/point/wn/{victim}"))?;
    p.wait(
        "document.querySelector('#empty')",
        "the deleted point's empty state",
    )?;

    // A narrow screen: nothing wider than the viewport (tables scroll inside their box).
    p.b.resize(380, 800)?;
    p.go("#/search/wn")?;
    p.wait(
        "document.querySelector('#query')",
        "the search page, narrow",
    )?;
    p.fill("#query", query)?;
    // The page keeps the last filter (the bad one above): clear it.
    p.fill("#search-filter", "")?;
    p.click("#search")?;
    p.wait(
        "document.querySelectorAll('#results-table tbody tr').length === 10",
        "results on a narrow screen",
    )?;
    let width = p.eval("document.documentElement.scrollWidth")?;
    if width.as_u64().is_none_or(|w| w > 380) {
        return Err(format!("the page is {width} px wide on a 380 px screen"));
    }
    p.shot("10-narrow-search")?;
    Ok(())
}
