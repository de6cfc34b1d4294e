//! `meshboot completion SHELL` and `meshboot man`: generated from the same clap definitions
//! the parser uses, so they cannot describe flags that do not exist.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap_complete::Shell;
use mesh_core::files::{Access, write_atomic};

use crate::exit::Exit;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Install, for example:
  bash:       meshboot completion bash > ~/.local/share/bash-completion/completions/meshboot
  zsh:        meshboot completion zsh > \"${fpath[1]}/_meshboot\"
  fish:       meshboot completion fish > ~/.config/fish/completions/meshboot.fish
  powershell: meshboot completion powershell | Out-String | Invoke-Expression")]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write meshboot.1 and one page per subcommand (meshboot-apply.1, meshboot-ca-init.1,
    /// ...) into DIR instead of printing meshboot.1.
    #[arg(long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn completion(args: CompletionArgs) -> anyhow::Result<Exit> {
    let mut cmd = crate::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "meshboot", &mut out);
    out.flush()
        .context("writing the completion script to stdout")?;
    Ok(Exit::Done)
}

pub fn man(args: ManArgs) -> anyhow::Result<Exit> {
    let mut cmd = crate::command().disable_help_subcommand(true);
    // Gives every subcommand its full name (meshboot-ca-init), which titles its page.
    cmd.build();
    match args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .context("writing the man page to stdout")?;
        }
        Some(dir) => {
            let mut written = Vec::new();
            write_pages(&cmd, &dir, &mut written)?;
            println!("wrote {} man page(s) into {}", written.len(), dir.display());
        }
    }
    Ok(Exit::Done)
}

fn write_pages(
    cmd: &clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    write_atomic(&path, &page, Access::Shared)
        .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
