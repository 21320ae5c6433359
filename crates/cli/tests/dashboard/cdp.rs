//! A headless Chromium driven through the Chrome DevTools Protocol over a pipe
//! (`--remote-debugging-pipe`: the browser reads commands on fd 3 and writes answers and events
//! on fd 4, each a JSON message ended by a NUL byte). No websocket, no driver binary and no
//! library whose version must follow the browser's: the protocol's stable core (Target, Page,
//! Runtime, Input, Emulation) is all the test uses.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long one protocol command may take before the test gives up (a page load, a
/// screenshot); not a measurement.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    commands: Option<ChildStdin>,
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Uncaught exceptions and `console.error` calls of the page, as text.
    pub page_errors: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium` headless with one page of `width`×`height` CSS pixels.
    pub fn launch(chromium: &Path, width: u32, height: u32) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        // The shell hands our stdin and stdout pipes to the browser as fds 3 and 4, where
        // --remote-debugging-pipe expects them, and gives it /dev/null for 0 and 1.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(chromium)
            .args([
                "--headless",
                // CI runs as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
        let commands = child.stdin.take();
        let out = child.stdout.take().ok_or("no pipe from the browser")?;
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            messages,
            next_id: 0,
            session: String::new(),
            page_errors: Vec::new(),
            _profile: profile,
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or("no targetId")?
            .to_string();
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        browser.session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_string();
        browser.call("Page.enable", json!({}))?;
        browser.call("Runtime.enable", json!({}))?;
        // A headless page is never the focused window; keyboard focus moves only if it acts
        // as one.
        browser.call(
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        )?;
        browser.resize(width, height)?;
        Ok(browser)
    }

    pub fn resize(&mut self, width: u32, height: u32) -> Result<(), String> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(())
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.send(method, params, None)
    }

    /// A command to the page.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let session = self.session.clone();
        self.send(method, params, Some(session))
    }

    fn send(
        &mut self,
        method: &str,
        params: Value,
        session: Option<String>,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        let pipe = self
            .commands
            .as_mut()
            .ok_or("the browser's pipe is closed")?;
        pipe.write_all(&bytes)
            .and_then(|()| pipe.flush())
            .map_err(|e| format!("{method}: cannot write to the browser: {e}"))?;
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = match self.messages.recv_timeout(left) {
                Ok(v) => v,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{method}: no answer from the browser"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{method}: the browser exited"));
                }
            };
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            self.note_event(&v);
        }
    }

    fn note_event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &v["params"]["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("an exception");
                self.page_errors.push(format!("uncaught: {text}"));
            }
            Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                self.page_errors
                    .push(format!("console.error: {}", v["params"]["args"]));
            }
            _ => {}
        }
    }

    /// Evaluates a JavaScript expression in the page (promises awaited) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            let text = e["exception"]["description"]
                .as_str()
                .or(e["text"].as_str())
                .unwrap_or("exception");
            return Err(format!("`{expression}` threw: {text}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `condition` (a JavaScript expression) until it is true; fails with `what` and
    /// the page's text if it never is.
    pub fn wait_for(&mut self, condition: &str, what: &str) -> Result<(), String> {
        let deadline = Instant::now() + COMMAND_LIMIT;
        let check = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            // An evaluation can fail while a navigation replaces the page: try again.
            if self.eval(&check).is_ok_and(|v| v == Value::Bool(true)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let text = self
                    .eval("document.querySelector('main') && document.querySelector('main').innerText")
                    .unwrap_or_default();
                return Err(format!(
                    "waited in vain for {what} ({condition}); the page says:\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn navigate(&mut self, url: &str) -> Result<(), String> {
        self.call("Page.navigate", json!({"url": url}))?;
        Ok(())
    }

    /// A key press with modifiers (1 Alt, 2 Ctrl, 4 Meta, 8 Shift) to the focused element.
    pub fn press(&mut self, key: &str, code: u32, modifiers: u32) -> Result<(), String> {
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code,
                       "nativeVirtualKeyCode": code, "modifiers": modifiers}),
            )?;
        }
        Ok(())
    }

    /// Saves a PNG of the page as it is now.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = r["data"].as_str().ok_or("no screenshot data")?;
        let png = base64_decode(data).ok_or("screenshot data is not base64")?;
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing its pipe makes the browser exit; kill it if it lingers.
        drop(self.commands.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (with padding), as the protocol sends binary data.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    Some(out)
}

#[test]
fn base64_decodes_what_it_should() {
    assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
    assert_eq!(base64_decode("aGVsbG8h").as_deref(), Some(&b"hello!"[..]));
    assert_eq!(base64_decode("aA==").as_deref(), Some(&b"h"[..]));
    assert_eq!(base64_decode("a"), None);
    assert_eq!(base64_decode("a*=="), None);
}
