//! What the results were measured on and with.

use std::path::Path;

pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub date: String,
    pub commit: String,
    pub load_at_start: String,
}

fn first_line_with(path: &str, prefix: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| {
            line.strip_prefix(prefix)
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    pub fn describe(workspace: &Path) -> Self {
        let memory = first_line_with("/proc/meminfo", "MemTotal")
            .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "unknown".into());
        let mut commit = command_output("git", &["rev-parse", "--short", "HEAD"], workspace);
        if command_output("git", &["status", "--porcelain"], workspace)
            .lines()
            .any(|l| !l.trim().is_empty() && l != "unknown")
        {
            commit += " (with uncommitted changes)";
        }
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model: first_line_with("/proc/cpuinfo", "model name")
                .unwrap_or_else(|| "unknown".into()),
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            rustc: command_output("rustc", &["-V"], workspace),
            date,
            commit,
            load_at_start: load_average(),
        }
    }
}

/// The `[profile.release]` section of the workspace manifest, plus any
/// `CARGO_PROFILE_RELEASE_*` overrides in the environment.
pub fn release_profile(workspace: &Path) -> String {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap_or_default();
    let mut inside = false;
    let mut settings = Vec::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == "[profile.release]";
            continue;
        }
        if inside && !trimmed.is_empty() && !trimmed.starts_with('#') {
            settings.push(trimmed.to_string());
        }
    }
    for (key, value) in std::env::vars() {
        if let Some(name) = key.strip_prefix("CARGO_PROFILE_RELEASE_") {
            settings.push(format!(
                "{} = {value} (environment override)",
                name.to_lowercase().replace('_', "-")
            ));
        }
    }
    settings.join(", ")
}

/// Whether an ELF file still has a symbol table or debug information.
pub fn has_symbols(path: &Path) -> Option<bool> {
    let data = std::fs::read(path).ok()?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None; // only 64-bit little-endian ELF is inspected
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    let shoff = u64_at(0x28)? as usize;
    let shentsize = u16_at(0x3a)? as usize;
    let shnum = u16_at(0x3c)? as usize;
    let shstrndx = u16_at(0x3e)? as usize;
    let section = |i: usize| shoff + i * shentsize;
    let names_offset = u64_at(section(shstrndx) + 0x18)? as usize;
    for i in 0..shnum {
        let name_at = names_offset + u32_at(section(i))? as usize;
        let name: Vec<u8> = data
            .get(name_at..)?
            .iter()
            .take_while(|&&b| b != 0)
            .copied()
            .collect();
        if name == b".symtab" || name.starts_with(b".debug_") {
            return Some(true);
        }
    }
    Some(false)
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews timings.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
