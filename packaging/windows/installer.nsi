; BurnCloud's Windows installer (NSIS): a per-user install with Start menu and desktop shortcuts,
; an uninstaller, and a check for the WebView2 runtime the window needs.
; makensis -DVERSION=0.1.0 -DSOURCE=dir-with-exe-dll-ico -DOUTFILE=BurnCloud-0.1.0-setup.exe installer.nsi

; BurnCloud is a 64-bit program: a 64-bit installer, which also runs where only 64-bit Windows
; support exists (Wine without its 32-bit half, Windows on servers without WoW64).
Target amd64-unicode
!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef SOURCE
  !error "pass -DSOURCE=the folder holding burncloud.exe, WebView2Loader.dll and burncloud.ico"
!endif
!ifndef OUTFILE
  !define OUTFILE "BurnCloud-${VERSION}-setup.exe"
!endif

!define APP "BurnCloud"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP}"
!define WEBVIEW2_CLIENT "{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"

Name "${APP}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP}"
InstallDirRegKey HKCU "Software\${APP}" "InstallDir"
SetCompressor /SOLID lzma
VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=1033 "ProductName" "${APP}"
VIAddVersionKey /LANG=1033 "FileDescription" "${APP} installer"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "CompanyName" "${APP}"
VIAddVersionKey /LANG=1033 "LegalCopyright" "Apache-2.0"

!include "MUI2.nsh"
!define MUI_ICON "${SOURCE}\burncloud.ico"
!define MUI_UNICON "${SOURCE}\burncloud.ico"
!define MUI_FINISHPAGE_RUN "$INSTDIR\burncloud.exe"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"
!insertmacro MUI_LANGUAGE "SimpChinese"

; The window is drawn by Microsoft Edge WebView2; without its runtime BurnCloud can only serve headless.
; A silent install (/S, as administrators deploy) goes ahead: serving needs no WebView2.
Function .onInit
  ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\${WEBVIEW2_CLIENT}" "pv"
  StrCmp $0 "" 0 webview2_found
  ReadRegStr $0 HKLM "SOFTWARE\Microsoft\EdgeUpdate\Clients\${WEBVIEW2_CLIENT}" "pv"
  StrCmp $0 "" 0 webview2_found
  ReadRegStr $0 HKCU "Software\Microsoft\EdgeUpdate\Clients\${WEBVIEW2_CLIENT}" "pv"
  StrCmp $0 "" 0 webview2_found
  MessageBox MB_YESNO|MB_ICONEXCLAMATION "BurnCloud's window needs the Microsoft Edge WebView2 Runtime, which is not installed.$\r$\n$\r$\nGet it from https://developer.microsoft.com/microsoft-edge/webview2/ (the Evergreen Bootstrapper).$\r$\n$\r$\nInstall BurnCloud anyway?" /SD IDYES IDYES webview2_found
  Abort
  webview2_found:
FunctionEnd

Section "BurnCloud"
  SetOutPath "$INSTDIR"
  File "${SOURCE}\burncloud.exe"
  File "${SOURCE}\WebView2Loader.dll"
!ifdef LLAMA_CPP_ZIP
  ; A llama.cpp build BurnCloud installs as its first runtime when it starts (checked by its sha256).
  SetOutPath "$INSTDIR\llama-cpp"
  File "${SOURCE}\llama-cpp\${LLAMA_CPP_ZIP}"
  File "${SOURCE}\llama-cpp\${LLAMA_CPP_ZIP}.sha256"
  SetOutPath "$INSTDIR"
!endif
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortcut "$SMPROGRAMS\${APP}\${APP}.lnk" "$INSTDIR\burncloud.exe"
  CreateShortcut "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk" "$INSTDIR\uninstall.exe"
  CreateShortcut "$DESKTOP\${APP}.lnk" "$INSTDIR\burncloud.exe"
  WriteRegStr HKCU "Software\${APP}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${APP}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\burncloud.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

; Settings, logs and models live in %APPDATA%\BurnCloud and stay, so a reinstall finds them.
Section "Uninstall"
  Delete "$INSTDIR\burncloud.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\uninstall.exe"
  Delete "$INSTDIR\llama-cpp\*.zip"
  Delete "$INSTDIR\llama-cpp\*.sha256"
  RMDir "$INSTDIR\llama-cpp"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${APP}\${APP}.lnk"
  Delete "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk"
  RMDir "$SMPROGRAMS\${APP}"
  Delete "$DESKTOP\${APP}.lnk"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\${APP}"
SectionEnd
