//! For Windows builds: the app icon and a version resource, compiled with windres (MinGW) and linked
//! into `burncloud.exe`, so Explorer, the taskbar and the installer show them.

#[path = "src/icon.rs"]
mod icon;

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/icon.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let icon_path = out.join("burncloud.ico");
    std::fs::write(&icon_path, icon::ico(&[16, 24, 32, 48, 64, 256])).expect("write the icon");
    let version = std::env::var("CARGO_PKG_VERSION").expect("CARGO_PKG_VERSION");
    let parts: Vec<u16> = version.split(['.', '-']).take(3).map(|p| p.parse().unwrap_or(0)).collect();
    let numeric =
        format!("{},{},{},0", parts.first().unwrap_or(&0), parts.get(1).unwrap_or(&0), parts.get(2).unwrap_or(&0));
    let script = format!(
        r#"1 ICON "{icon}"
1 VERSIONINFO
FILEVERSION {numeric}
PRODUCTVERSION {numeric}
FILEOS 0x40004
FILETYPE 0x1
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "CompanyName", "BurnCloud"
      VALUE "FileDescription", "BurnCloud - local LLM gateway and model manager"
      VALUE "FileVersion", "{version}"
      VALUE "InternalName", "burncloud"
      VALUE "OriginalFilename", "burncloud.exe"
      VALUE "ProductName", "BurnCloud"
      VALUE "ProductVersion", "{version}"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"#,
        icon = icon_path.display().to_string().replace('\\', "/"),
    );
    let script_path = out.join("burncloud.rc");
    std::fs::write(&script_path, script).expect("write the resource script");
    let object = out.join("burncloud-resource.o");
    let windres = std::env::var("WINDRES").unwrap_or_else(|_| "x86_64-w64-mingw32-windres".into());
    match Command::new(&windres).arg(&script_path).args(["-O", "coff", "-o"]).arg(&object).status() {
        Ok(status) if status.success() => println!("cargo:rustc-link-arg-bins={}", object.display()),
        other => println!(
            "cargo:warning=no icon or version resource in burncloud.exe: {windres} failed ({other:?}); install MinGW's binutils"
        ),
    }
}
