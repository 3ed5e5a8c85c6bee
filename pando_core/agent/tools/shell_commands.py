"""Which options of which commands are known not to write, execute, reach the network or print secrets.

An allow-list, not a deny-list: an option that is not named here makes the command "not read-only"
(the user is asked), so a new or abbreviated option (`sort --outp=/f`, which GNU getopt takes as
`--output`) can never slip through. Used by :mod:`pando_core.agent.tools.shell_safety`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    """How one command's arguments are read.

    `short` are single-letter flags without a value (clusters like `-la` are split), `short_valued`
    single letters that take a value (`-n5` or `-n 5`); `long` flags without a value, `long_valued`
    long options that take one (`--lines=5` or `--lines 5`), `long_optional` ones that may take one
    only with `=`. `paths` names the options whose value is a file. `operands`: "paths" (each must
    stay inside the working directory), "pattern" (the first is a pattern unless one of `pattern`
    gave it, the rest are paths), "any" (free text), "none". `dynamic` allows words whose value is
    only known at run time (`echo $(date)`) for commands none of whose options can do harm.
    """

    short: str = ""
    short_valued: str = ""
    short_attached: str = ""  # letters whose value, if any, is attached (git diff -M50%, -U3)
    long: frozenset[str] = frozenset()
    long_valued: frozenset[str] = frozenset()
    long_optional: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()
    operands: str = "paths"
    max_operands: int | None = None
    numeric: bool = False  # -NUM is a flag (head -5, grep -3)
    pattern: frozenset[str] = frozenset()
    dynamic: bool = False


def spec(
    short: str = "",
    valued: str = "",
    attached: str = "",
    long: str = "",
    long_valued: str = "",
    optional: str = "",
    paths: str = "",
    pattern: str = "",
    **kwargs,
) -> Spec:
    def names(text: str) -> frozenset[str]:
        return frozenset(f"--{name}" if not name.startswith("-") else name for name in text.split())

    return Spec(
        short=short,
        short_valued=valued,
        short_attached=attached,
        long=names(long),
        long_valued=names(long_valued),
        long_optional=names(optional),
        paths=frozenset(paths.split()),
        pattern=frozenset(pattern.split()),
        **kwargs,
    )


def merge(*specs: Spec, **overrides) -> Spec:
    """The union of several specs' options (git log = revision options + diff options)."""
    fields = {
        "short": "".join(s.short for s in specs),
        "short_valued": "".join(s.short_valued for s in specs),
        "short_attached": "".join(s.short_attached for s in specs),
        "long": frozenset().union(*(s.long for s in specs)),
        "long_valued": frozenset().union(*(s.long_valued for s in specs)),
        "long_optional": frozenset().union(*(s.long_optional for s in specs)),
        "paths": frozenset().union(*(s.paths for s in specs)),
        "pattern": frozenset().union(*(s.pattern for s in specs)),
    }
    fields.update(overrides)
    return Spec(**fields)


TEXT = spec(operands="any", dynamic=True)  # arguments are just text: echo, printf, basename ...

GREP = spec(
    short="EFGPiyvwxcLloqsbHhnTZzraIU",
    valued="mABCefd",
    long="extended-regexp fixed-strings basic-regexp perl-regexp ignore-case no-ignore-case invert-match "
    "word-regexp line-regexp count files-with-matches files-without-match only-matching quiet silent "
    "no-messages byte-offset with-filename no-filename line-number initial-tab null null-data recursive "
    "text line-buffered colour",
    long_valued="max-count after-context before-context context regexp file label binary-files "
    "directories devices include exclude exclude-dir",
    optional="color colour",
    paths="-f --file",
    pattern="-e -f --regexp --file",
    operands="pattern",
    numeric=True,
)

RG = spec(
    short="iSswxvcClnNHIoupz0qUFaP.",
    valued="eftTgmABCMjdrE",
    long="ignore-case smart-case case-sensitive word-regexp line-regexp invert-match count count-matches "
    "files-with-matches files-without-match line-number no-line-number with-filename no-filename "
    "only-matching unrestricted hidden no-ignore no-ignore-vcs no-ignore-parent no-ignore-dot "
    "no-ignore-global no-ignore-exclude search-zip null quiet multiline multiline-dotall "
    "fixed-strings text pcre2 heading no-heading column no-column vimgrep json stats trim files "
    "type-list pretty crlf no-messages byte-offset passthru no-config glob-case-insensitive "
    "one-file-system sort-files no-unicode binary no-binary",
    long_valued="regexp file type type-not glob iglob max-count after-context before-context context "
    "max-columns max-depth threads replace sort sortr max-filesize type-add encoding path-separator "
    "context-separator field-match-separator engine ignore-file",
    optional="color colors",
    paths="-f --file --ignore-file",
    pattern="-e -f --regexp --file --files --type-list",
    operands="pattern",
)

LS = spec(
    short="aAbBcCdfFgGhHiklmnNopqQrRsStuUvxXZ1",
    valued="IwT",
    long="all almost-all author escape directory classify file-type human-readable si "
    "dereference-command-line dereference-command-line-symlink-to-dir group-directories-first "
    "no-group inode literal numeric-uid-gid hide-control-chars show-control-chars quote-name recursive "
    "reverse size context zero full-time",
    long_valued="ignore hide width tabsize sort time format quoting-style indicator-style block-size "
    "time-style",
    optional="color hyperlink",
)

HEAD_TAIL = spec(
    short="qvzfF",
    valued="ncs",
    long="quiet silent verbose zero-terminated follow retry",
    long_valued="lines bytes sleep-interval pid max-unchanged-stats",
    numeric=True,
)

SORT = spec(
    short="bdfgiMhnRrVcCsumz",
    valued="ktS",
    long="ignore-leading-blanks dictionary-order ignore-case general-numeric-sort ignore-nonprinting "
    "month-sort human-numeric-sort numeric-sort random-sort reverse version-sort merge stable unique "
    "zero-terminated debug",
    long_valued="key field-separator buffer-size parallel sort",
    optional="check",
)

UNIQ = spec(
    short="cdDuiz",
    valued="fsw",
    long="count repeated unique ignore-case zero-terminated",
    long_valued="skip-fields skip-chars check-chars",
    optional="all-repeated group",
    max_operands=1,  # a second operand is the output file
)

TREE = spec(
    short="adfxipsugDFqNQvtcrUCnAShJX",
    valued="LPI",
    long="noreport dirsfirst gitignore prune matchdirs ignore-case du si inodes device",
    long_valued="filelimit charset timefmt sort",
)

DIFF = spec(
    short="qsucyiwbBEZatTpNr",
    valued="UCWxIFX",
    long="brief report-identical-files context unified side-by-side left-column suppress-common-lines "
    "ignore-case ignore-tab-expansion ignore-trailing-space ignore-space-change ignore-all-space "
    "ignore-blank-lines text strip-trailing-cr expand-tabs initial-tab show-c-function recursive "
    "new-file unidirectional-new-file minimal speed-large-files normal no-dereference",
    long_valued="width exclude ignore-matching-lines label show-function-line tabsize "
    "horizon-lines from-file to-file exclude-from",
    optional="color",
    paths="-X --exclude-from --from-file --to-file",
)

FIND_TESTS_WITH_VALUE = frozenset(
    "-name -iname -path -ipath -wholename -iwholename -regex -iregex -regextype -type -xtype -size -mtime "
    "-mmin -atime -amin -ctime -cmin -used -user -group -uid -gid -perm -links -inum -lname -ilname "
    "-maxdepth -mindepth -printf -fstype -context".split()
)
FIND_TESTS_WITH_PATH = frozenset("-newer -anewer -cnewer -samefile".split())
FIND_TESTS = frozenset(
    "-print -print0 -ls -prune -quit -empty -true -false -readable -writable -executable -nouser -nogroup "
    "-depth -xdev -mount -noleaf -daystart -ignore_readdir_race -not -a -o -and -or ( ) ! ,".split()
)

# git: global options before the subcommand that only change how it reads
GIT_GLOBAL_FLAGS = frozenset(
    "--no-pager -P --no-optional-locks --literal-pathspecs --glob-pathspecs --noglob-pathspecs "
    "--icase-pathspecs --no-replace-objects --no-lazy-fetch".split()
)

_DIFF_OPTIONS = spec(
    short="psuzRaWbwD",
    attached="BMClU",
    valued="SG",
    long="patch no-patch raw patch-with-raw patch-with-stat numstat shortstat summary name-only name-status "
    "no-color color-moved-ws no-renames find-renames find-copies find-copies-harder break-rewrites "
    "irreversible-delete pickaxe-all pickaxe-regex text ignore-space-at-eol ignore-space-change "
    "ignore-all-space ignore-blank-lines ignore-cr-at-eol minimal patience histogram function-context "
    "exit-code quiet cached staged merge-base no-index full-index binary no-prefix default-prefix "
    "no-ext-diff no-textconv check compact-summary indent-heuristic no-indent-heuristic ita-invisible-in-index "
    "no-relative",
    long_valued="diff-filter anchored inter-hunk-context src-prefix dst-prefix word-diff-regex "
    "diff-algorithm line-prefix stat-width stat-name-width stat-count stat-graph-width",
    optional="stat dirstat color color-words word-diff color-moved abbrev relative ignore-submodules "
    "submodule unified find-renames find-copies break-rewrites",
)
_LOG_OPTIONS = spec(
    short="iEFPgcm",
    valued="nL",
    long="all-match invert-grep regexp-ignore-case extended-regexp fixed-strings perl-regexp basic-regexp "
    "cc merges no-merges first-parent all oneline abbrev-commit no-abbrev-commit no-decorate graph reverse "
    "relative-date follow topo-order date-order author-date-order left-right cherry-pick cherry-mark "
    "cherry boundary ancestry-path simplify-by-decoration full-history dense sparse simplify-merges "
    "source notes no-notes walk-reflogs mailmap use-mailmap no-mailmap no-use-mailmap expand-tabs "
    "no-expand-tabs parents children count objects objects-edge no-walk do-walk remove-empty "
    "show-pulls reflog log-size timestamp left-only right-only not full-diff no-min-parents "
    "no-max-parents single-worktree exclude-first-parent-only combined-diff dense-combined",
    long_valued="max-count skip since after until before author committer grep format date encoding "
    "since-as-filter min-parents max-parents exclude",
    optional="pretty decorate branches tags remotes glob abbrev-commit diff-merges",
    numeric=True,
    operands="paths",
)
GIT = {
    "status": spec(
        short="sbvz",
        valued="u",
        long="short branch long verbose show-stash ahead-behind no-ahead-behind renames no-renames no-column",
        optional="porcelain untracked-files ignored ignore-submodules column find-renames",
    ),
    "diff": _DIFF_OPTIONS,
    "log": merge(_LOG_OPTIONS, _DIFF_OPTIONS, numeric=True),
    "show": merge(_LOG_OPTIONS, _DIFF_OPTIONS, numeric=True),
    "whatchanged": merge(_LOG_OPTIONS, _DIFF_OPTIONS, numeric=True),
    "rev-list": merge(_LOG_OPTIONS, numeric=True),
    "shortlog": merge(
        _LOG_OPTIONS,
        spec(short="nsec", long="numbered summary email committer", long_valued="group", optional="w"),
    ),
    "ls-files": spec(
        short="cdoiskmtvfuz",
        valued="xX",
        long="cached deleted others ignored stage unmerged killed modified exclude-standard directory "
        "no-empty-directory error-unmatch full-name recurse-submodules eol deduplicate sparse",
        long_valued="exclude exclude-from exclude-per-directory format with-tree",
        optional="abbrev",
        paths="-X --exclude-from",
    ),
    "rev-parse": spec(
        short="q",
        long="verify quiet sq not symbolic symbolic-full-name all local-env-vars git-dir "
        "absolute-git-dir git-common-dir is-inside-git-dir is-inside-work-tree is-bare-repository "
        "is-shallow-repository show-toplevel show-prefix show-cdup show-superproject-working-tree "
        "show-object-format flags no-flags revs-only no-revs sq-quote",
        long_valued="default prefix since after until before path-format git-path resolve-git-dir",
        optional="short abbrev-ref branches tags remotes glob shared-index-path",
        operands="any",
    ),
    "describe": spec(
        long="tags all long always contains exact-match first-parent debug",
        long_valued="match exclude candidates",
        optional="abbrev dirty broken",
        operands="any",
    ),
    "blame": spec(
        short="bltsewnfcpMC",
        valued="L",
        long="root show-stats porcelain line-porcelain incremental show-name show-number show-email "
        "color-lines color-by-age progress no-progress",
        long_valued="date ignore-rev ignore-revs-file since contents",
        optional="abbrev score-debug",
        paths="--ignore-revs-file --contents",
    ),
    "grep": spec(
        short="iIwvhHEGFPnlLcozqWpr",
        valued="ABCemf",
        long="cached untracked no-index no-exclude-standard exclude-standard recurse-submodules text "
        "ignore-case word-regexp invert-match full-name extended-regexp basic-regexp fixed-strings "
        "perl-regexp line-number column files-with-matches name-only files-without-match count "
        "only-matching null break heading show-function function-context and or not all-match quiet "
        "recursive no-recursive no-color",
        long_valued="max-depth after-context before-context context threads max-count",
        optional="color",
        paths="-f",
        pattern="-e -f",
        operands="pattern",
        numeric=True,
    ),
    "show-ref": spec(
        short="sqd",
        long="head heads tags branches verify dereference quiet exists",
        optional="hash abbrev",
        operands="any",
    ),
    "cat-file": spec(short="tspe", operands="any", max_operands=2),
    "merge-base": spec(short="a", long="all octopus independent is-ancestor fork-point", operands="any"),
    "name-rev": spec(long="tags all name-only undefined always", long_valued="refs exclude", operands="any"),
    "count-objects": spec(short="vH", long="verbose human-readable", operands="none"),
    "check-ignore": spec(short="qvnz", long="quiet verbose non-matching no-index"),
    "version": spec(long="build-options", operands="none"),
}
# `git branch` / `git tag` list only with these; other arguments create, rename or delete
GIT_LISTING = {
    "branch": spec(
        short="arvil",
        long="all remotes verbose list ignore-case show-current no-color no-column omit-empty",
        long_valued="contains no-contains merged no-merged points-at sort format",
        optional="color column abbrev",
        operands="any",
    ),
    "tag": spec(
        short="il",
        valued="n",
        long="list ignore-case no-column omit-empty",
        long_valued="contains no-contains merged no-merged points-at sort format",
        optional="color column",
        operands="any",
    ),
}

COMMANDS: dict[str, Spec] = {
    "cat": spec(
        short="AbeEnstTuv",
        long="show-all number-nonblank show-ends number squeeze-blank show-tabs show-nonprinting",
    ),
    "tac": spec(short="br", valued="s", long="before regex", long_valued="separator"),
    "head": HEAD_TAIL,
    "tail": HEAD_TAIL,
    "wc": spec(short="cmlLw", long="bytes chars lines max-line-length words", optional="total"),
    "ls": LS,
    "dir": LS,
    "grep": GREP,
    "egrep": GREP,
    "fgrep": GREP,
    "rg": RG,
    "sort": SORT,
    "uniq": UNIQ,
    "tree": TREE,
    "diff": DIFF,
    "cut": spec(
        short="snz",
        valued="bcfd",
        long="only-delimited complement zero-terminated",
        long_valued="bytes characters fields delimiter output-delimiter",
    ),
    "tr": spec(
        short="cCdst", long="complement delete squeeze-repeats truncate-set1", operands="any", max_operands=2
    ),
    "nl": spec(
        short="p",
        valued="bdfhilnsvw",
        long="no-renumber",
        long_valued="body-numbering "
        "section-delimiter footer-numbering header-numbering line-increment join-blank-lines "
        "number-format number-separator starting-line-number number-width",
    ),
    "comm": spec(
        short="123iz",
        long="check-order nocheck-order total zero-terminated",
        long_valued="output-delimiter",
        max_operands=2,
    ),
    "file": spec(
        short="bchiklLNnprsSzZ0",
        valued="eFfP",
        long="brief mime mime-type mime-encoding "
        "keep-going list dereference no-dereference no-pad preserve-date raw special-files "
        "uncompress uncompress-noreport print0 no-sandbox",
        long_valued="exclude separator files-from parameter",
        paths="-f --files-from",
    ),
    "stat": spec(
        short="Lft", valued="c", long="dereference file-system terse", long_valued="format printf cached"
    ),
    "du": spec(
        short="abchkmsxPDHSl0",
        valued="dBtX",
        long="all apparent-size bytes total "
        "human-readable si summarize one-file-system separate-dirs count-links null "
        "inodes dereference-args no-dereference",
        long_valued="max-depth block-size threshold exclude exclude-from time-style",
        optional="time",
        paths="-X --exclude-from",
    ),
    "df": spec(
        short="ahHiklPTx",
        valued="tBx",
        long="all human-readable si inodes local portability print-type total no-sync sync",
        long_valued="type exclude-type block-size",
        optional="output",
    ),
    "realpath": spec(
        short="emLPqsz",
        long="canonicalize-existing canonicalize-missing logical physical quiet strip no-symlinks zero",
        long_valued="relative-to relative-base",
        paths="--relative-to --relative-base",
    ),
    "readlink": spec(
        short="femnqsvz",
        long="canonicalize canonicalize-existing canonicalize-missing no-newline quiet silent verbose zero",
    ),
    "md5sum": spec(short="btz", long="binary text zero tag"),
    "sha1sum": spec(short="btz", long="binary text zero tag"),
    "sha256sum": spec(short="btz", long="binary text zero tag"),
    "sha512sum": spec(short="btz", long="binary text zero tag"),
    "b2sum": spec(short="btz", long="binary text zero tag"),
    "cksum": spec(long="binary text zero tag raw untagged base64", long_valued="algorithm length"),
    "pwd": spec(short="LP", operands="none"),
    "echo": spec(short="neE", operands="any", dynamic=True),
    "printf": spec(operands="any", dynamic=True),
    "basename": spec(
        short="az", valued="s", long="multiple zero", long_valued="suffix", operands="any", dynamic=True
    ),
    "dirname": spec(short="z", long="zero", operands="any", dynamic=True),
    "true": TEXT,
    "false": TEXT,
    ":": TEXT,
    "sleep": spec(operands="any"),
    "seq": spec(short="w", valued="fs", long="equal-width", long_valued="format separator", operands="any"),
    "expr": spec(operands="any", dynamic=True),
    "which": spec(short="as", operands="any"),
    "whereis": spec(short="bmsul", operands="any"),
    "whatis": spec(short="lrw", operands="any"),
    "uname": spec(
        short="asnrvmpio",
        long="all kernel-name nodename kernel-release kernel-version "
        "machine processor hardware-platform operating-system",
        operands="none",
    ),
    "arch": spec(operands="none"),
    "nproc": spec(long="all", long_valued="ignore", operands="none"),
    "whoami": spec(operands="none"),
    "id": spec(
        short="ugGnrza", long="user group groups name real zero context", operands="any", max_operands=1
    ),
    "groups": spec(operands="any"),
    "uptime": spec(short="ps", long="pretty since", operands="none"),
    "free": spec(
        short="bkmghltw",
        long="bytes kibi mebi gibi tebi pebi kilo mega giga tera peta human si lohi total wide",
        operands="none",
    ),
    "cal": spec(short="13jymsSw", operands="any", max_operands=2),
    "tty": spec(short="s", long="silent quiet", operands="none"),
}

# Commands that print the environment: the provider API keys and every other secret in it.
SECRET_BEARING = frozenset({"env", "printenv", "set", "export", "declare", "typeset", "compgen", "local"})

# Variables a command may be given (`LC_ALL=C sort a`): none of them loads code or runs a program.
HARMLESS_VARIABLES = frozenset(
    {
        "LANG",
        "LANGUAGE",
        "TZ",
        "NO_COLOR",
        "CLICOLOR",
        "FORCE_COLOR",
        "COLUMNS",
        "LINES",
        "TERM",
    }
)
HARMLESS_VARIABLE_PREFIXES = ("LC_",)

# Options that follow symbolic links while walking a tree are left out on purpose (grep -R, rg -L,
# find -L/-follow, ls -L, tree -l, du -L): a link to a directory outside would be read through.

SYSTEM_BIN_DIRS = frozenset({"/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"})
SHELLS = frozenset({"sh", "bash", "dash"})
