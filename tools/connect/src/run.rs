//! The commands `connect` runs for the user: the AWS CLI with the Session Manager plugin, and
//! OpenSSH. The argument lists are built here, pure, and run by `spawn`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Problem;

/// What every session command needs: where the AWS CLI is, the profile, the region.
#[derive(Debug, Clone)]
pub struct Cli {
    pub aws: PathBuf,
    pub profile: Option<String>,
    pub region: String,
}

/// The deployment's session documents (`--document-prefix`, `--shell-document`).
#[derive(Debug, Clone)]
pub struct Documents {
    pub shell: String,
    pub prefix: String,
}

impl Documents {
    pub fn port_forwarding(&self) -> String {
        format!("{}PortForwarding", self.prefix)
    }

    pub fn ssh(&self) -> String {
        format!("{}SSH", self.prefix)
    }
}

/// Find a program on `PATH`, or say how to install it.
pub fn program(name: &str) -> Result<PathBuf, Problem> {
    which::which(name).map_err(|_| {
        Problem::Setup(match name {
            "aws" => "the AWS CLI (`aws`) is not on PATH: install version 2, \
                      https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
                .to_owned(),
            "session-manager-plugin" => "the Session Manager plugin (`session-manager-plugin`) is not on PATH: install it, \
                 https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
                .to_owned(),
            other => format!("`{other}` is not on PATH: install the OpenSSH client"),
        })
    })
}

impl Cli {
    /// `aws [--profile P] <service> <operation> --region R`.
    fn base(&self, service: &str, operation: &str) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(profile) = &self.profile {
            args.extend(["--profile".to_owned(), profile.clone()]);
        }
        args.extend([
            service.to_owned(),
            operation.to_owned(),
            "--region".to_owned(),
            self.region.clone(),
        ]);
        args
    }

    /// `aws ssm start-session` on `target` with `document` (always named: the document access
    /// check refuses a session without one).
    pub fn start_session(
        &self,
        target: &str,
        document: &str,
        parameters: Option<&str>,
    ) -> Vec<String> {
        let mut args = self.base("ssm", "start-session");
        args.extend([
            "--target".to_owned(),
            target.to_owned(),
            "--document-name".to_owned(),
            document.to_owned(),
        ]);
        if let Some(parameters) = parameters {
            args.extend(["--parameters".to_owned(), parameters.to_owned()]);
        }
        args
    }

    /// Forward `remote` on the instance to `local` on this machine.
    pub fn forward(
        &self,
        target: &str,
        documents: &Documents,
        remote: u16,
        local: u16,
    ) -> Vec<String> {
        let parameters = serde_json::json!({
            "portNumber": [remote.to_string()],
            "localPortNumber": [local.to_string()],
        })
        .to_string();
        self.start_session(target, &documents.port_forwarding(), Some(&parameters))
    }

    /// Push `public_key` for `os_user`: EC2 Instance Connect keeps it for 60 seconds.
    pub fn push_key(&self, target: &str, os_user: &str, public_key: &Path) -> Vec<String> {
        let mut args = self.base("ec2-instance-connect", "send-ssh-public-key");
        args.extend([
            "--instance-id".to_owned(),
            target.to_owned(),
            "--instance-os-user".to_owned(),
            os_user.to_owned(),
            "--ssh-public-key".to_owned(),
            format!("file://{}", public_key.display()),
        ]);
        args
    }

    /// The `ProxyCommand` OpenSSH runs (through the user's shell, hence the quoting; ssh expands
    /// `%h` and `%p` inside quotes too): a session with the product's SSH document to the port
    /// ssh asks for.
    pub fn proxy_command(&self, documents: &Documents) -> Result<String, Problem> {
        let mut words = vec![self.aws.display().to_string()];
        words.extend(self.start_session("%h", &documents.ssh(), Some("portNumber=%p")));
        let quoted: Result<Vec<String>, _> = words
            .iter()
            .map(|w| shlex::try_quote(w).map(|q| q.into_owned()))
            .collect();
        quoted
            .map(|q| q.join(" "))
            .map_err(|_| Problem::Setup("the AWS CLI's path cannot be quoted for ssh".to_owned()))
    }
}

/// OpenSSH's options for an instance: the one-use key only, the OS user, the proxy.
pub fn ssh_options(key: &Path, os_user: &str, proxy: &str) -> Vec<String> {
    vec![
        "-i".to_owned(),
        key.display().to_string(),
        "-o".to_owned(),
        "IdentitiesOnly=yes".to_owned(),
        "-o".to_owned(),
        format!("User={os_user}"),
        "-o".to_owned(),
        format!("ProxyCommand={proxy}"),
    ]
}

/// Run `program` with `args`, the terminal passed through; its exit code.
pub fn spawn(program: &Path, args: &[String]) -> Result<i32, Problem> {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| Problem::Setup(format!("cannot run {}: {e}", program.display())))?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Cli {
        Cli {
            aws: PathBuf::from("/opt/aws cli/aws"),
            profile: Some("research".into()),
            region: "eu-west-1".into(),
        }
    }

    fn documents() -> Documents {
        Documents {
            shell: "SSM-SessionManagerRunShell".into(),
            prefix: "SsmSessionOwner-".into(),
        }
    }

    #[test]
    fn every_session_names_its_document_region_and_profile() {
        assert_eq!(
            cli().start_session("i-0123456789abcdef0", "SSM-SessionManagerRunShell", None),
            [
                "--profile",
                "research",
                "ssm",
                "start-session",
                "--region",
                "eu-west-1",
                "--target",
                "i-0123456789abcdef0",
                "--document-name",
                "SSM-SessionManagerRunShell"
            ]
        );
        assert_eq!(
            cli().forward("i-0123456789abcdef0", &documents(), 8888, 18888)[8..],
            [
                "--document-name",
                "SsmSessionOwner-PortForwarding",
                "--parameters",
                r#"{"portNumber":["8888"],"localPortNumber":["18888"]}"#
            ]
        );
    }

    #[test]
    fn the_proxy_command_survives_the_shell_and_names_the_ssh_document() {
        assert_eq!(
            cli().proxy_command(&documents()).unwrap(),
            "'/opt/aws cli/aws' --profile research ssm start-session --region eu-west-1 \
             --target '%h' --document-name SsmSessionOwner-SSH --parameters 'portNumber=%p'"
        );
    }

    #[test]
    fn the_key_is_pushed_for_the_os_user_from_its_file() {
        let args = cli().push_key("i-0123456789abcdef0", "ubuntu", Path::new("/tmp/k/key.pub"));
        assert_eq!(
            args[2..],
            [
                "ec2-instance-connect",
                "send-ssh-public-key",
                "--region",
                "eu-west-1",
                "--instance-id",
                "i-0123456789abcdef0",
                "--instance-os-user",
                "ubuntu",
                "--ssh-public-key",
                "file:///tmp/k/key.pub"
            ]
        );
    }
}
