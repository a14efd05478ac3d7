; Inno Setup 6 script: a per-user (or, if chosen, machine-wide) installer for the bundle built by
; packaging/build.sh on Windows. Start-menu shortcut, optional desktop shortcut, "Open with
; PneumoViewer" for .dcm files and for folders, and an uninstaller. NOT tested in CI (Linux only).
;   iscc /DAppVersion=0.1.0 packaging\windows\pneumoviewer.iss   ->  dist\PneumoViewer-0.1.0-setup.exe

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define Gui "pneumoviewer-gui.exe"

[Setup]
; Keep this AppId for every release: it is how upgrades and the uninstaller find earlier installs.
AppId={{A040E9C2-491E-41CE-AA28-47B4BD8E73E0}
AppName=PneumoViewer
AppVersion={#AppVersion}
AppPublisher=PneumoViewer contributors
DefaultDirName={autopf}\PneumoViewer
DefaultGroupName=PneumoViewer
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=..\..\pneumoviewer\resources\icons\pneumoviewer.ico
UninstallDisplayIcon={app}\{#Gui}
OutputDir=..\..\dist
OutputBaseFilename=PneumoViewer-{#AppVersion}-setup
Compression=lzma2
SolidCompression=yes
ChangesAssociations=yes

[Tasks]
Name: desktopicon; Description: "Create a desktop shortcut"; Flags: unchecked

[Files]
Source: "..\..\dist\PneumoViewer\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{autoprograms}\PneumoViewer"; Filename: "{app}\{#Gui}"; Comment: "Pneumothorax review on chest X-rays"
Name: "{autodesktop}\PneumoViewer"; Filename: "{app}\{#Gui}"; Tasks: desktopicon

[Registry]
; .dcm files: offered under "Open with", without taking over an existing default viewer.
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "PneumoViewer.dcm"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\PneumoViewer.dcm"; ValueType: string; ValueName: ""; ValueData: "DICOM image"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\PneumoViewer.dcm\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#Gui},0"
Root: HKA; Subkey: "Software\Classes\PneumoViewer.dcm\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#Gui}"" ""%1"""
; Folders: a context-menu entry, leaving Explorer the folders' default action.
Root: HKA; Subkey: "Software\Classes\Directory\shell\PneumoViewer"; ValueType: string; ValueName: ""; ValueData: "Open with PneumoViewer"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Directory\shell\PneumoViewer"; ValueType: string; ValueName: "Icon"; ValueData: "{app}\{#Gui},0"
Root: HKA; Subkey: "Software\Classes\Directory\shell\PneumoViewer\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#Gui}"" ""%1"""

[Run]
Filename: "{app}\{#Gui}"; Description: "Start PneumoViewer"; Flags: nowait postinstall skipifsilent
