//! A minimal WebDriver client for the browser tests: chromedriver from Debian's
//! `chromium-driver`, driving Debian's `chromium`, both found on the PATH.
//!
//! Deliberately not a crate like fantoccini: the dozen commands used here are plain JSON
//! over HTTP/1.1, and a WebDriver crate would bring an HTTP client stack, cookie and URL
//! crates into a test build that already compiles sea-orm for three backends on 2 cores.
//! Nothing is downloaded: a missing browser is reported, never fetched.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The element key of the W3C WebDriver protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and its driver are, if installed.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let which = |names: &[&str]| {
        names.iter().find_map(|n| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(n))
                    .find(|p| p.is_file())
            })
        })
    };
    let chrome = std::env::var_os("CHROME_BIN")
        .map(PathBuf::from)
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome"]))?;
    let driver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["chromedriver"]))?;
    Some((chrome, driver))
}

/// A TCP port on 127.0.0.1 that was free a moment ago. Only a guess: another process can
/// take it before chromedriver binds it, which [`Browser::start`] detects and retries.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How many ports [`Browser::start`] tries before giving up.
const START_ATTEMPTS: usize = 3;

/// How long one chromedriver may take to answer `/status` with ready. A bound against a
/// hang, not a speed requirement.
const READY_WAIT: Duration = Duration::from_secs(30);

/// A running chromedriver with one headless browser session; both end on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile. A chromedriver
    /// that exits or never gets ready (most likely: its port was taken in the meantime)
    /// is retried on a new port, [`START_ATTEMPTS`] times, and then reported as an error.
    pub async fn start(chrome: &Path, driver: &Path) -> Result<Self, Error> {
        let mut failures = Vec::new();
        let mut ready = None;
        for _ in 0..START_ATTEMPTS {
            match Self::launch(driver).await {
                Ok(browser) => {
                    ready = Some(browser);
                    break;
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        let Some(mut browser) = ready else {
            return Err(format!(
                "chromedriver {} did not start in {START_ATTEMPTS} attempts: {}",
                driver.display(),
                failures.join("; ")
            )
            .into());
        };
        std::fs::create_dir_all(&browser.profile)?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-breakpad",
                    "--disable-crash-reporter",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", browser.profile.display()),
                ],
            },
        }}});
        let created = browser.http("POST", "/session", Some(caps)).await?;
        browser.session = created["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {created}"))?
            .to_owned();
        Ok(browser)
    }

    /// Starts chromedriver on a new port and waits until it is ready. On an error the
    /// half-started `Browser` is dropped, which kills the process.
    async fn launch(driver: &Path) -> Result<Self, Error> {
        let port = free_port()?;
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut browser = Self {
            driver: child,
            port,
            session: String::new(),
            profile: std::env::temp_dir().join(format!(
                "sea-orm-audit-chrome-{}",
                uuid::Uuid::new_v4().simple()
            )),
        };
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            if let Some(status) = browser.driver.try_wait()? {
                return Err(format!("chromedriver on port {port} exited with {status}").into());
            }
            // Checked again after the answer, so that a ready reply from some other
            // process that got the port first is not taken for ours.
            let probe = browser.http("GET", "/status", None);
            if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(5), probe).await
                && reply["value"]["ready"] == json!(true)
                && browser.driver.try_wait()?.is_none()
            {
                return Ok(browser);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "chromedriver on port {port} not ready after {} s",
                    READY_WAIT.as_secs()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn http(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        // chromedriver keeps the connection open despite `Connection: close`: read the
        // head, then exactly Content-Length bytes (or chunks up to the last one).
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let read = async {
            loop {
                let n = stream.read(&mut buf).await?;
                raw.extend_from_slice(&buf[..n]);
                if n == 0 || complete(&raw) {
                    return Ok::<_, std::io::Error>(());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), read).await??;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .ok_or("malformed HTTP response from chromedriver")?;
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(payload)
        } else {
            payload.to_owned()
        };
        let value: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("{method} {path}: {e}: {payload}"))?;
        if let Some(err) = value["value"].get("error") {
            return Err(format!("{method} {path}: {err}: {}", value["value"]["message"]).into());
        }
        Ok(value)
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let path = format!("/session/{}{path}", self.session);
        Ok(self.http(method, &path, body).await?["value"].take())
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), Error> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String, Error> {
        Ok(self
            .cmd("GET", "/url", None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The document title.
    pub async fn title(&self) -> Result<String, Error> {
        Ok(self
            .cmd("GET", "/title", None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits up to 10 s for the title to start with `prefix` (after a click that submits
    /// a form, the navigation may still be under way), and returns the title.
    pub async fn wait_title(&self, prefix: &str) -> Result<String, Error> {
        let mut title = String::new();
        for _ in 0..100 {
            title = self.title().await?;
            if title.starts_with(prefix) {
                return Ok(title);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "title {title:?} does not start with {prefix:?} at {}",
            self.url().await?
        )
        .into())
    }

    /// The elements matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Result<Vec<String>, Error> {
        let found = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Result<String, Error> {
        self.find_all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no element matches {css:?}").into())
    }

    /// Clicks the first element matching `css` (and waits for any navigation).
    pub async fn click(&self, css: &str) -> Result<(), Error> {
        let e = self.find(css).await?;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await?;
        Ok(())
    }

    /// Clicks the first element matching `css` and waits (up to 10 s) until a new
    /// document has loaded: the old one is marked first, so the wait cannot be satisfied
    /// by the page the click started from.
    pub async fn click_nav(&self, css: &str) -> Result<(), Error> {
        self.eval("window.__stale_page = true; return true").await?;
        self.click(css).await?;
        for _ in 0..100 {
            let fresh = self
                .eval("return window.__stale_page === undefined && document.readyState === 'complete'")
                .await;
            if matches!(fresh, Ok(Value::Bool(true))) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("clicking {css:?} loaded no new page").into())
    }

    /// Replaces the text of the input matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), Error> {
        let e = self.find(css).await?;
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})))
            .await?;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// The rendered text of each element matching `css`.
    pub async fn texts(&self, css: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for e in self.find_all(css).await? {
            let t = self.cmd("GET", &format!("/element/{e}/text"), None).await?;
            out.push(t.as_str().unwrap_or_default().to_owned());
        }
        Ok(out)
    }

    /// The value of attribute `name` of each element matching `css`.
    pub async fn attrs(&self, css: &str, name: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for e in self.find_all(css).await? {
            let t = self
                .cmd("GET", &format!("/element/{e}/attribute/{name}"), None)
                .await?;
            out.push(t.as_str().unwrap_or_default().to_owned());
        }
        Ok(out)
    }

    /// Runs a script in the page (WebDriver's own channel, not the page's) and returns
    /// its result.
    pub async fn eval(&self, script: &str) -> Result<Value, Error> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Deletes every cookie (a logout for cookie-based auth).
    pub async fn clear_cookies(&self) -> Result<(), Error> {
        self.cmd("DELETE", "/cookie", None).await?;
        Ok(())
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self, to: &Path) -> Result<(), Error> {
        let b64 = self.cmd("GET", "/screenshot", None).await?;
        let png = sea_orm_audit::base64_decode(b64.as_str().unwrap_or_default())
            .ok_or("screenshot is not base64")?;
        std::fs::File::create(to)?.write_all(&png)?;
        Ok(())
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.cmd("DELETE", "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Whether `raw` holds a whole HTTP response.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n")
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
