"""Runs the real desktop app in a virtual X display and looks at it."""

import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import ADMIN_KEY, BURNCLOUD_BIN, start, stop

WINDOW_TOOLS = ["Xvfb", "xdotool", "import", "convert"]


def missing_tools():
    return [tool for tool in WINDOW_TOOLS if shutil.which(tool) is None]


class VirtualDisplay:
    def __init__(self, width=1280, height=800):
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as reader:
            self.name = ":" + reader.readline().strip()

    def close(self):
        self.process.kill()
        self.process.wait(timeout=5)


class Window:
    """The real `burncloud` binary with no subcommand, in `display`."""

    def __init__(self, display, data_dir, page=None, lang=None, listen="127.0.0.1:0"):
        env = dict(os.environ, DISPLAY=display.name, BURNCLOUD_ADMIN_KEY=ADMIN_KEY, BURNCLOUD_LOG="warn")
        self.env = env
        env.pop("WAYLAND_DISPLAY", None)
        if page:
            env["BURNCLOUD_PAGE"] = page
        if lang:
            env["BURNCLOUD_LANG"] = lang
        self.display = display
        self.process, self.base = start([BURNCLOUD_BIN, "--listen", listen, "--data-dir", str(data_dir)], env=env)
        self.id = self.xdotool("search", "--sync", "--onlyvisible", "--name", "^BurnCloud$").split()[0]

    def xdotool(self, *args, timeout=20):
        result = subprocess.run(
            ["xdotool", *args], env=dict(os.environ, DISPLAY=self.display.name),
            capture_output=True, text=True, timeout=timeout, check=True,
        )
        return result.stdout.strip()

    def geometry(self):
        lines = self.xdotool("getwindowgeometry", self.id).splitlines()
        size = next(line for line in lines if "Geometry:" in line).split()[-1]
        width, height = size.split("x")
        return int(width), int(height)

    def screenshot(self, path, settle=2.5):
        time.sleep(settle)  # the webview paints after the window maps
        subprocess.run(["import", "-display", self.display.name, "-window", "root", str(path)], check=True, timeout=20)
        return Path(path)

    def visible(self):
        result = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^BurnCloud$"],
                                env=dict(os.environ, DISPLAY=self.display.name), capture_output=True, text=True)
        return bool(result.stdout.strip())

    def request_close(self):
        """Sends the close request a window manager's close button sends."""
        from Xlib import X, display, protocol

        connection = display.Display(self.display.name)
        target = connection.create_resource_object("window", int(self.id))
        protocols = connection.intern_atom("WM_PROTOCOLS")
        delete = connection.intern_atom("WM_DELETE_WINDOW")
        message = protocol.event.ClientMessage(
            window=target, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        target.send_event(message, event_mask=X.NoEventMask)
        connection.flush()
        connection.close()

    def close(self):
        """Closes the window and waits for the app to end; returns the exit code."""
        self.request_close()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            return stop(self.process)


def pixel_spread(path):
    """Standard deviation of the image's pixels: near 0 for a blank screen."""
    out = subprocess.run(["convert", str(path), "-format", "%[fx:standard_deviation]", "info:"],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)
