//! moto in server mode on a free loopback port: stopped on drop (also on a test panic), and by
//! the kernel if the process that started it dies first, so no server outlives its test.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;

pub const REGION: &str = "us-east-1";
/// An AMI that moto ships, so RunInstances needs no set-up.
pub const AMI: &str = "ami-12c6146b";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server; stopped on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// Start moto on 127.0.0.1 with a free port and wait until it accepts connections.
    ///
    /// The interpreter is `MOTO_PYTHON` if set (the scripts point it at their virtualenv),
    /// otherwise `python3`.
    pub fn start() -> io::Result<Self> {
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("ssm-session-owner-moto-{port}.log"));
        let mut command = Command::new(&python);
        command
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGTERM the child
        // when the thread that spawned it exits, so an aborted test cannot leak a server.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run {python} -m moto.server: {e} (scripts/test and scripts/demo install moto into .venv; or set MOTO_PYTHON to a Python that has it)"))
        })?;
        let mut moto = Moto { child, port, log };
        moto.wait_until_ready()?;
        Ok(moto)
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
                return Err(io::Error::other(format!(
                    "moto exited with {status} before listening (is moto installed for {python}? scripts/test and scripts/demo install it into .venv): {log}"
                )));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "moto did not start within 60 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a child process (replay, a function) that should talk to this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Environment for a child process of the product (`replay`, `capacity`) against this moto,
    /// for the users' role `role`. moto has no SSM session APIs, so ending sessions on
    /// termination is off; logs are kept to errors.
    pub fn product_env(&self, role: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env.extend([
            ("SESSION_ROLE_NAME", role.to_owned()),
            // moto serves 38 regions; a single-region deployment keeps the per-event counts
            // readable. The multi-region tests set their own.
            ("REGIONS", REGION.to_owned()),
            ("END_SESSIONS_ON_TERMINATE", "false".to_owned()),
            // The template's default: sharing on.
            ("SHARING", "true".to_owned()),
            ("RUST_LOG", "error".to_owned()),
        ]);
        env
    }

    /// The product's SDK configuration (same timeouts and retries), pointed at this moto.
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_at(&self.endpoint()).await
    }

    /// The same, pointed at `endpoint` (a fault proxy in front of this moto).
    pub async fn sdk_config_at(&self, endpoint: &str) -> SdkConfig {
        shared::aws::sdk_loader()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
