//! Three `keycard serve` processes on loopback sharing one PostgreSQL database (a fresh one on
//! the test server, per test) and one Redis (a `redis-server` this harness starts, so a test
//! can restart it). Requests are signed for one public host, `keycard.test`, and sent to any
//! node with that `Host` header, as a load balancer would.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keycard_client::{Credentials, Realm, SignRequest, Signer};
use serde_json::Value;

pub const HOST: &str = "keycard.test";
pub const ACCOUNT: &str = "1234567";

/// The cluster tests restart shared services and measure delays: one at a time.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` without persistence, as the tests' shared state.
pub struct Redis {
    pub port: u16,
    child: Mutex<Option<Child>>,
}

impl Redis {
    pub fn start() -> Self {
        let redis = Self {
            port: free_port(),
            child: Mutex::new(None),
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no chance to save anything).
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty.
    pub fn restart(&self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/services.sh installs it)");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command("PING").as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Marks a brand-new dataset as one nothing was ever accepted against (the operator's
    /// first-deployment step in docs/deploy.md): no reset hold.
    pub fn mark_first_deployment(&self) {
        assert_eq!(self.command("SET keycard:epoch 0").as_deref(), Some("+OK"));
    }

    /// An inline command; the whole answer, raw.
    pub fn command_raw(&self, line: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // QUIT: the server answers it, then closes, which ends the read.
        write!(stream, "{line}\r\nQUIT\r\n").unwrap();
        let mut answer = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut answer).unwrap();
        answer
    }

    /// An inline command; the first line of the answer.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(stream, "{line}\r\n").ok()?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).ok()?;
        Some(answer.trim_end().to_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `keycard serve` process.
pub struct Node {
    pub port: u16,
    child: Child,
}

impl Node {
    /// SIGKILL: the node gets no chance to release anything.
    pub fn kill(&self) {
        let killed = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database, `keycard init` on it, Redis, and three nodes.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: Redis,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    pub creds: Value,
    pub http: reqwest::Client,
    serve_args: Vec<String>,
}

impl Cluster {
    /// `extra` goes to every `keycard serve` (e.g. a short slot lease).
    pub async fn start(extra: &[&str]) -> Self {
        let database_url = keycard_testkit::fresh_postgres_database().await;
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            nodes: Vec::new(),
            redis: Redis::start(),
            database_url,
            dir,
            creds: Value::Null,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            serve_args: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        cluster.redis.mark_first_deployment();
        let init = cluster.admin(&["init", "--account", ACCOUNT, "--json"]);
        cluster.creds = serde_json::from_str(&init).unwrap();
        for _ in 0..3 {
            let node = cluster.spawn_node();
            cluster.nodes.push(node);
        }
        cluster
    }

    pub fn data_dir(&self) -> String {
        self.dir.path().to_str().unwrap().to_owned()
    }

    /// `keycard ARGS` on the shared directory (the master key file is in the temp dir);
    /// panics on failure; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let data = self.data_dir();
        let mut all = args.to_vec();
        all.extend_from_slice(&["--data-dir", &data, "--database-url", &self.database_url]);
        let out = crate::keycard(&all, &[]);
        assert!(
            out.status.success(),
            "keycard {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts another node on the directory and Redis.
    pub fn spawn_node(&self) -> Node {
        let data = self.data_dir();
        let redis = self.redis.url();
        let mut command = Command::new(env!("CARGO_BIN_EXE_keycard"));
        for (name, _) in std::env::vars() {
            if name.starts_with("KEYCARD_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", &data])
            .args(["--database-url", &self.database_url, "--redis-url", &redis])
            .args(&self.serve_args)
            .env("KEYCARD_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut port = None;
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            port = line
                .split("://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|port| port.parse().ok());
            seen.push(line);
            if port.is_some() {
                break;
            }
        }
        let port = port.unwrap_or_else(|| panic!("no address from keycard serve: {seen:?}"));
        // Keep reading, so the node never blocks on a full pipe; warnings go to the test's
        // output.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[node {port}] {line}");
            }
        });
        Node { port, child }
    }

    pub fn cred(&self, name: &str) -> String {
        self.creds[name].as_str().unwrap().to_owned()
    }

    /// The signer for `init`'s token, or for another token of the same integration.
    pub fn signer(&self, token: Option<(&str, &str)>) -> Signer {
        let (id, secret) = token.map_or_else(
            || (self.cred("token_id"), self.cred("token_secret")),
            |(id, secret)| (id.to_owned(), secret.to_owned()),
        );
        Signer::new(
            Credentials::new(self.cred("consumer_key"), self.cred("consumer_secret"))
                .with_token(id, secret),
            Some(Realm::new(ACCOUNT)),
        )
    }

    /// Sends a signed request to node `node`; (status, body). A connection failure is status 0.
    pub async fn send(
        &self,
        node: usize,
        method: &str,
        path_and_query: &str,
        authorization: &str,
    ) -> (u16, String) {
        let (status, body, _) = self
            .send_full(node, method, path_and_query, authorization)
            .await;
        (status, body)
    }

    /// As [`Cluster::send`], with the answer's `x-request-id`.
    pub async fn send_full(
        &self,
        node: usize,
        method: &str,
        path_and_query: &str,
        authorization: &str,
    ) -> (u16, String, Option<String>) {
        let url = format!("http://127.0.0.1:{}{path_and_query}", self.nodes[node].port);
        let request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("host", HOST)
            .header("authorization", authorization)
            .timeout(Duration::from_secs(15));
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let id = response
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (status, response.text().await.unwrap_or_default(), id)
            }
            Err(_) => (0, String::new(), None),
        }
    }

    /// POSTs a form to node `node` (signed when `authorization` is given): (status,
    /// `Location`, body).
    pub async fn post_form(
        &self,
        node: usize,
        path: &str,
        form: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> (u16, String, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.nodes[node].port);
        let mut request = self.http.post(url).header("host", HOST).form(form);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, location, response.text().await.unwrap())
    }

    /// A freshly signed tokeninfo on `node` with `signer`; the status.
    pub async fn tokeninfo(&self, node: usize, signer: &Signer) -> u16 {
        let authorization = sign(signer, "GET", "/rest/tokeninfo");
        self.send(node, "GET", "/rest/tokeninfo", &authorization)
            .await
            .0
    }
}

/// 32 random alphanumerics.
pub fn nonce() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).unwrap();
    bytes
        .iter()
        .map(|b| {
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    [usize::from(*b) % 62],
            )
        })
        .collect()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A sum of `keycard_slots_in_use` over the node's pools, from `/metrics`.
pub async fn slots_held(cluster: &Cluster, node: usize) -> u32 {
    let url = format!("http://127.0.0.1:{}/metrics", cluster.nodes[node].port);
    let Ok(response) = cluster.http.get(url).send().await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("keycard_slots_in_use{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u32>().ok())
        .sum()
}

/// A request for `path_and_query` on the public host, signed now: the Authorization header.
pub fn sign(signer: &Signer, method: &str, path_and_query: &str) -> String {
    let url = format!("http://{HOST}{path_and_query}");
    signer
        .sign(
            &SignRequest {
                method,
                url: &url,
                ..SignRequest::default()
            },
            &nonce(),
            now(),
        )
        .unwrap()
        .authorization
}

/// `name=value&…` answers (request and access tokens).
pub fn form_field(body: &str, name: &str) -> String {
    body.split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}
