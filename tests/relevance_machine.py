"""A Debian server, written to a directory: what the relevance tests judge the search on.

Programs on PATH that packages installed (some through links, some named otherwise than their
package), desktop entries, dpkg's records, and apt lists in several files: a release list with
debtags, an updates list, and a security list with newer versions and no debtags, as Debian's
are. Thousands of packages that are no programs (libraries, documentation, translations,
language modules) sit around them, so the search has to tell programs apart.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.servers import Machine


def _words(text: str) -> list[str]:
    return text.split()


#: Installed packages: (package, its programs, section, graphical?).
INSTALLED: list[tuple[str, list[str], str, bool]] = [
    (
        "coreutils",
        _words("""ls cat cp mv rm mkdir chmod chown sort uniq head tail wc date echo env basename dirname
                            readlink realpath tee touch sleep stat split shuf seq nproc timeout whoami printf md5sum
                            sha256sum base64 comm cut paste join expand fold numfmt install df du"""),
        "utils",
        False,
    ),
    ("git", ["git", "git-shell", "git-receive-pack", "git-upload-pack"], "vcs", False),
    ("curl", ["curl"], "web", False),
    ("wget", ["wget"], "web", False),
    ("jq", ["jq"], "utils", False),
    ("nano", ["nano", "rnano"], "editors", False),
    ("htop", ["htop"], "utils", False),
    ("python3", ["pydoc3", "pygettext3"], "python", False),
    ("python3.11", ["pydoc3.11"], "python", False),
    ("python3.11-minimal", ["python3.11"], "python", False),
    ("perl", ["perl", "cpan", "perldoc"], "perl", False),
    ("openssh-client", ["ssh", "scp", "sftp", "ssh-keygen", "ssh-agent", "ssh-add"], "net", False),
    ("rsync", ["rsync"], "net", False),
    ("tar", ["tar"], "utils", False),
    ("gzip", ["gzip", "gunzip", "zcat"], "utils", False),
    ("bzip2", ["bzip2", "bunzip2", "bzcat"], "utils", False),
    ("xz-utils", ["xz", "unxz", "xzcat"], "utils", False),
    ("zip", ["zip"], "utils", False),
    ("unzip", ["unzip", "zipinfo", "funzip"], "utils", False),
    ("findutils", ["find", "xargs"], "utils", False),
    ("grep", ["grep", "egrep", "fgrep"], "utils", False),
    ("sed", ["sed"], "utils", False),
    ("gawk", ["gawk"], "interpreters", False),
    ("diffutils", ["diff", "cmp", "sdiff", "diff3"], "utils", False),
    ("less", ["less", "lesspipe"], "text", False),
    ("procps", ["ps", "top", "free", "pgrep", "pkill", "uptime", "vmstat", "watch", "pmap"], "admin", False),
    ("psmisc", ["killall", "pstree", "fuser", "prtstat"], "admin", False),
    ("util-linux", ["lsblk", "mount", "umount", "dmesg", "lscpu", "findmnt", "script", "more"], "utils", False),
    ("make", ["make"], "devel", False),
    ("gcc-12", ["gcc-12"], "devel", False),
    ("cmake", ["cmake", "ctest", "cpack"], "devel", False),
    ("docker.io", ["docker", "dockerd"], "admin", False),
    ("kubernetes-client", ["kubectl"], "admin", False),
    ("ripgrep", ["rg"], "utils", False),
    ("fd-find", ["fdfind"], "utils", False),
    ("tmux", ["tmux"], "admin", False),
    ("screen", ["screen"], "misc", False),
    ("sqlite3", ["sqlite3"], "database", False),
    ("postgresql-client-15", ["psql", "pg_dump", "pg_restore", "pg_dumpall"], "database", False),
    ("redis-tools", ["redis-cli", "redis-benchmark"], "database", False),
    ("nodejs", ["node", "nodejs"], "javascript", False),
    ("npm", ["npm", "npx"], "javascript", False),
    ("golang-go", ["go", "gofmt"], "golang", False),
    ("openjdk-17-jre-headless", ["java", "keytool"], "java", False),
    ("imagemagick-6.q16", ["convert", "identify", "mogrify", "display-im6.q16"], "graphics", False),
    ("ffmpeg", ["ffmpeg", "ffprobe"], "video", False),
    ("gimp", ["gimp", "gimp-console"], "graphics", True),
    ("gnome-calculator", ["gnome-calculator"], "gnome", True),
    ("xterm", ["xterm", "uxterm"], "x11", True),
    ("strace", ["strace"], "utils", False),
    ("lsof", ["lsof"], "utils", False),
    ("tree", ["tree"], "utils", False),
    ("ncdu", ["ncdu"], "admin", False),
    ("shellcheck", ["shellcheck"], "devel", False),
    ("pandoc", ["pandoc"], "text", False),
    ("graphviz", ["dot", "neato", "circo"], "graphics", False),
    ("socat", ["socat"], "net", False),
    ("netcat-openbsd", ["nc", "netcat"], "net", False),
    ("dnsutils", ["dig", "nslookup", "nsupdate"], "net", False),
    ("iproute2", ["ip", "ss", "bridge", "tc"], "net", False),
    ("traceroute", ["traceroute"], "net", False),
    ("whois", ["whois", "mkpasswd"], "net", False),
    ("gnupg", ["gpg", "gpgconf", "gpg-agent"], "utils", False),
    ("openssl", ["openssl"], "utils", False),
    ("ansible", ["ansible", "ansible-playbook", "ansible-galaxy"], "admin", False),
    ("terraform", ["terraform"], "admin", False),
    ("httpie", ["http", "https"], "web", False),
    ("mariadb-client", ["mariadb", "mysqldump"], "database", False),
]

#: Desktop entries of installed programs: (file id, Name, Exec, Terminal, owning package).
DESKTOP = [
    ("htop.desktop", "Htop", "htop", True, "htop"),
    ("vim.desktop", "Vim", "vim %F", True, "vim-common"),
    ("python3.11.desktop", "Python (v3.11)", "/usr/bin/python3.11", True, "python3.11"),
    ("gimp.desktop", "GNU Image Manipulation Program", "gimp-2.10 %U", False, "gimp"),
    ("org.gnome.Calculator.desktop", "Calculator", "gnome-calculator", False, "gnome-calculator"),
    ("xterm.desktop", "XTerm", "xterm", False, "xterm"),
    (
        "display-im6.q16.desktop",
        "ImageMagick (color depth q16)",
        "/usr/bin/display-im6.q16",
        False,
        "imagemagick-6.q16",
    ),
]

#: Graphical programs apt offers and nothing installed: (package, section).
INSTALLABLE_GUI = [
    ("firefox-esr", "web"), ("chromium", "web"), ("chroma", "games"), ("thunderbird", "mail"),
    ("libreoffice-writer", "editors"), ("libreoffice-calc", "editors"), ("libreoffice-impress", "editors"),
    ("inkscape", "graphics"), ("krita", "graphics"), ("vlc", "video"), ("blender", "graphics"),
    ("audacity", "sound"), ("evince", "gnome"), ("gedit", "gnome"), ("geany", "devel"), ("vim-gtk3", "editors"),
    ("kate", "kde"), ("konsole", "kde"), ("okular", "kde"), ("dolphin", "kde"), ("xfce4-terminal", "xfce"),
    ("mousepad", "xfce"), ("thunar", "xfce"), ("pcmanfm", "x11"), ("transmission-gtk", "net"),
    ("filezilla", "net"), ("remmina", "net"), ("meld", "devel"), ("gnome-terminal", "gnome"), ("eog", "gnome"),
    ("totem", "gnome"), ("rhythmbox", "gnome"), ("shotwell", "gnome"), ("darktable", "graphics"),
    ("scribus", "graphics"), ("kdenlive", "kde"), ("obs-studio", "video"), ("wireshark", "net"),
    ("virt-manager", "admin"), ("gparted", "admin"), ("synaptic", "admin"), ("keepassxc", "utils"),
    ("emacs-gtk", "editors"), ("gnome-boxes", "gnome"), ("calibre", "text"), ("gnucash", "gnome"),
    ("handbrake", "graphics"), ("mpv", "video"), ("pidgin", "net"), ("hexchat", "net"), ("digikam", "kde"),
    ("gthumb", "gnome"), ("ristretto", "xfce"), ("simple-scan", "gnome"), ("cheese", "gnome"),
    ("baobab", "gnome"), ("deja-dup", "gnome"), ("zim", "x11"), ("xournalpp", "graphics"), ("freecad", "science"),
]  # fmt: skip

#: Command-line programs apt offers and nothing installed.
INSTALLABLE_CLI = _words(
    """vim-tiny neovim emacs-nox mc ranger zsh fish bash-completion btop glances iotop nmap tcpdump mtr-tiny aria2 lynx
    w3m mutt neomutt irssi weechat newsboat hugo jekyll rclone restic borgbackup duplicity podman buildah skopeo crun
    runc containerd sqlite3-tools postgresql-15 redis-server memcached nginx apache2 lighttpd haproxy squid bind9
    dnsmasq unbound chrony ntpsec fail2ban ufw nftables iptables clang llvm lldb gdb valgrind cppcheck clang-format
    meson ninja-build autoconf automake libtool rustc cargo ruby php-cli lua5.4 tcl r-base octave maxima gnuplot
    sagemath julia erlang elixir ghc ocaml sbcl guile-3.0 racket scala kotlin maven gradle ant"""
)


def debian_machine(root: Path, *, noise: int = 3000, seed: int = 20261130) -> Machine:
    """Write the machine under `root`: its programs, desktop entries, dpkg's records and apt's lists."""
    machine = Machine(root)
    for package, programs, section, _ in INSTALLED:
        files = [machine.executable(name) for name in programs]
        machine.installed(package, "1.0-1", files=files, section=section, description=f"{package} program")
    # Through links, as Debian's alternatives and version-named interpreters install them.
    vim_basic = machine.executable("vim.basic")
    machine.link("vim", vim_basic)
    machine.link("vimdiff", vim_basic)
    machine.installed("vim", "2:9.0.1378-2", files=[vim_basic, machine.executable("vimtutor")], section="editors")
    machine.link("python3", machine.bin / "python3.11")
    machine.installed("python3-minimal", "3.11.2-1+b1", files=[machine.bin / "python3"], section="python")
    machine.link("gimp-2.10", machine.bin / "gimp")
    machine.link("gcc", machine.bin / "gcc-12")
    machine.installed("gcc", "4:12.2.0-3", files=[machine.bin / "gcc"], section="devel")
    for file_id, name, command, terminal, package in DESKTOP:
        path = machine.desktop(file_id, Name=name, Exec=command, Terminal="true" if terminal else "false")
        machine.installed(package, "1.0-1", files=[path], section="misc")  # adds its file list beside the first
    machine.installed("vim-common", "2:9.0.1378-2", files=[machine.executable("helpztags")], section="editors")
    machine.installed(
        "libc-bin", "2.36-9", files=[machine.executable("ldd"), machine.executable("getconf")], section="libs"
    )
    machine.executable("rustup")  # installed outside dpkg, as tools in ~/.cargo/bin are
    machine.executable("cargo")

    release, updates, security = [], [], []
    for package, _, section, gui in INSTALLED:
        release.append(_stanza(package, "1.0-1", section, gui=gui))
    for package, section in INSTALLABLE_GUI:
        release.append(_stanza(package, "2.0-1", section, gui=True))
        release.append(_stanza(f"{package}-l10n-de", "2.0-1", "localization"))
        release.append(_stanza(f"{package}-doc", "2.0-1", "doc"))
        if package in ("firefox-esr", "chromium", "thunderbird", "libreoffice-writer", "gimp"):
            security.append(_stanza(package, "2.0-1+deb12u1", section, tags=False))
    for part in ("common", "driver", "sandbox", "shell"):
        release.append(_stanza(f"chromium-{part}", "2.0-1", "web"))
    release.append(_stanza("firefox-esr-mobile-config", "2.0-1", "web", gui=True))
    for package in INSTALLABLE_CLI:
        release.append(_stanza(package, "3.0-1", "utils"))
    updates.append(_stanza("curl", "1.0-2", "web", tags=False))
    rng = random.Random(seed)
    words = [name for name, *_ in INSTALLED] + [name for name, _ in INSTALLABLE_GUI] + INSTALLABLE_CLI
    for number in range(noise):  # libraries, modules and documentation named after the programs
        word = rng.choice(words).split("-")[0]
        pattern = rng.choice(["lib{}{}", "lib{}-dev", "python3-{}{}", "r-cran-{}", "node-{}-{}", "ruby-{}{}",
                              "golang-{}-dev", "libghc-{}-{}", "{}-data", "lib{}-perl", "{}-plugin-{}"])  # fmt: skip
        name = pattern.format(word, number, number)
        section = "libs" if name.startswith("lib") else rng.choice(["python", "gnu-r", "javascript", "misc"])
        release.append(_stanza(name, "0.1-1", section))
    machine.packages("deb.debian.org_debian_dists_bookworm_main_binary-amd64", "\n".join(release))
    machine.packages("deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64", "\n".join(updates))
    machine.packages("deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64", "\n".join(security))
    return machine


def _stanza(package: str, version: str, section: str, *, gui: bool = False, tags: bool = True) -> str:
    stanza = f"Package: {package}\nVersion: {version}\nPriority: optional\nSection: {section}\n"
    stanza += f"Description: {package.replace('-', ' ')} for Debian\n Longer text that nobody reads.\n"
    if tags:
        tag = "interface::x11, role::program, uitoolkit::gtk" if gui else "interface::commandline, role::program"
        stanza += f"Tag: {tag},\n scope::utility\n"
    return stanza
