//! How llama-server processes are started and ended on each platform, so none outlives the app:
//! on Unix the child leads its own process group and (on Linux) dies with its parent; on Windows
//! it runs in a Job Object that kills it when the app's handle closes.
#![expect(unsafe_code, reason = "process groups, signals and Job Objects are raw OS calls")]

use std::path::{Path, PathBuf};

/// Grace between the polite stop and the kill.
#[cfg(unix)]
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Puts the child in its own process group and, on Linux, asks the kernel to kill it when the app
/// dies, however it dies.
#[cfg(unix)]
pub fn isolate(command: &mut tokio::process::Command) {
    command.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid, _exit).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

#[cfg(windows)]
pub fn isolate(command: &mut tokio::process::Command) {
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    command.creation_flags(CREATE_NO_WINDOW);
}

/// Keeps a Windows child tied to the app: a Job Object that kills its processes when closed.
/// Elsewhere the process group does this, and the guard holds nothing.
pub struct Guard {
    /// Held, never read: closing it is what ends the child.
    #[cfg(windows)]
    _job: windows_job::Job,
}

#[cfg(unix)]
pub fn guard(_child: &tokio::process::Child) -> std::io::Result<Guard> {
    Ok(Guard {})
}

#[cfg(windows)]
pub fn guard(child: &tokio::process::Child) -> std::io::Result<Guard> {
    let handle = child.raw_handle().ok_or_else(|| std::io::Error::other("the child has already exited"))?;
    Ok(Guard { _job: windows_job::Job::kill_on_close(handle)? })
}

/// Asks the whole process group to stop, waits up to `STOP_GRACE`, then kills it; always reaps.
pub async fn terminate(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        // SAFETY: plain syscalls on the group we created; an already-gone group returns ESRCH.
        unsafe {
            libc::killpg(pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
            return;
        }
        unsafe {
            libc::killpg(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Where the pid of each running instance is kept, so a restarted app can stop what a killed one
/// left behind.
pub fn pid_file(run_dir: &Path, instance_id: i64) -> PathBuf {
    run_dir.join(format!("llama-server-{instance_id}.pid"))
}

pub fn write_pid_file(run_dir: &Path, instance_id: i64, pid: u32) {
    let written = std::fs::create_dir_all(run_dir)
        .and_then(|()| std::fs::write(pid_file(run_dir, instance_id), format!("{pid}\n")));
    if let Err(error) = written {
        tracing::warn!(%error, "cannot write the llama-server pid file; a crash of the app may leave it running");
    }
}

/// Stops llama-server processes recorded by a previous run that are still alive. A pid is only
/// killed when its command line is a llama-server with our flags (pids get reused).
pub fn stop_leftovers(run_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(run_dir) else { return 0 };
    let mut stopped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_pid_file = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("llama-server-") && n.ends_with(".pid"));
        if !is_pid_file {
            continue;
        }
        let pid = std::fs::read_to_string(&path).ok().and_then(|text| text.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|&pid| is_our_llama_server(pid)) {
            kill_leftover(pid);
            stopped += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    stopped
}

#[cfg(target_os = "linux")]
fn is_our_llama_server(pid: u32) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<String> = raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let program_is_llama = args.first().is_some_and(|a| a.contains("llama-server"));
    program_is_llama && args.iter().any(|a| a == "--api-key") && args.iter().any(|a| a == "--alias")
}

#[cfg(not(target_os = "linux"))]
fn is_our_llama_server(_pid: u32) -> bool {
    // Without /proc the command line cannot be checked; on Windows the Job Object already ended
    // the children of a killed app.
    false
}

#[cfg(unix)]
fn kill_leftover(pid: u32) {
    // SAFETY: signals to a verified llama-server and its group.
    unsafe {
        libc::killpg(pid as libc::pid_t, libc::SIGKILL);
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_leftover(_pid: u32) {}

#[cfg(windows)]
mod windows_job {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation, SetInformationJobObject,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    };

    pub struct Job(HANDLE);

    // SAFETY: a job handle may be used and closed from any thread.
    unsafe impl Send for Job {}
    unsafe impl Sync for Job {}

    impl Job {
        pub fn kill_on_close(process: std::os::windows::io::RawHandle) -> std::io::Result<Job> {
            // SAFETY: documented Win32 calls with valid arguments; failures are checked.
            unsafe {
                let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
                if job.is_null() {
                    return Err(std::io::Error::last_os_error());
                }
                let job = Job(job);
                let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
                limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
                let size = std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32;
                let limits_ptr = (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast();
                if SetInformationJobObject(job.0, JobObjectExtendedLimitInformation, limits_ptr, size) == 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if AssignProcessToJobObject(job.0, process as HANDLE) == 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(job)
            }
        }
    }

    impl Drop for Job {
        fn drop(&mut self) {
            // SAFETY: the handle came from CreateJobObjectW and is closed once.
            unsafe {
                CloseHandle(self.0);
            }
        }
    }
}
