//! Which pickle imports are dangerous, which are known to be safe, and which are unknown.
//!
//! The deny-list is at least the union of picklescan's, modelscan's and fickling's lists,
//! plus the 2025 bypass advisories (CVE-2025-1716 `pip.main`, CVE-2025-10157 submodules of
//! deny-listed packages, GHSA-g38g-8gr9-h9xp `uuid._get_command_stdout` and friends,
//! GHSA-v7x6-rv5q-mhwc `timeit`, `cProfile.run`, `pydoc.locate`, `pkgutil.resolve_name`,
//! `ensurepip._run_pip`, `torch.utils.collect_env.run`, `torch._inductor.codecache`,
//! `numpy.f2py`, `code.InteractiveInterpreter`). A module entry matches the module *and every
//! submodule* (the CVE-2025-10157 lesson), and a dotted name is matched on its first segment.
//! Anything neither denied nor allowed is an "unknown import": a warning, not an error.

/// Whole modules (and their submodules) whose every callable can run code, touch files or
/// the network.
const DENY_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "_posixsubprocess",
    "sys",
    "socket",
    "_socket",
    "socketserver",
    "shutil",
    "pty",
    "runpy",
    "pickle",
    "_pickle",
    "cPickle",
    "pickletools",
    "dill",
    "cloudpickle",
    "shelve",
    "marshal",
    "bdb",
    "pdb",
    "asyncio",
    "webbrowser",
    "httplib",
    "http",
    "requests",
    "aiohttp",
    "httpx",
    "urllib",
    "urllib2",
    "urllib3",
    "ftplib",
    "smtplib",
    "telnetlib",
    "imaplib",
    "poplib",
    "nntplib",
    "xmlrpc",
    "ctypes",
    "_ctypes",
    "cffi",
    "importlib",
    "imp",
    "zipimport",
    "pkgutil",
    "pydoc",
    "code",
    "codeop",
    "timeit",
    "cProfile",
    "profile",
    "trace",
    "multiprocessing",
    "_multiprocessing",
    "concurrent",
    "threading",
    "_thread",
    "signal",
    "pip",
    "ensurepip",
    "setuptools",
    "distutils",
    "venv",
    "site",
    "_osx_support",
    "_aix_support",
    "platform",
    "tempfile",
    "glob",
    "fileinput",
    "logging",
    "sqlite3",
    "types",
    "inspect",
    "gc",
    "mmap",
    "tarfile",
    "zipfile",
    "commands",
    "popen2",
    "spawn",
    "torch.hub",
    "torch.serialization",
    "torch.utils.collect_env",
    "torch._inductor",
    "torch.utils.cpp_extension",
    "torch.jit",
    "torch.package",
    "torch.fx.graph_module",
    "torch.distributed",
    "torch._dynamo",
    "torch.ops",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "numpy.ctypeslib",
    "numpy.lib.npyio",
    "tensorflow.io",
    "tensorflow.python.ops.gen_io_ops",
    "keras.utils.get_file",
    "transformers.dynamic_module_utils",
    "huggingface_hub",
    "jinja2",
    "yaml",
    "jsonpickle",
    "IPython",
    "sympy",
    "idlelib",
    "lib2to3",
    "doctest",
    "tkinter",
    "_tkinter",
    "turtle",
    "_sqlite3",
    "dbm",
    "pandas.io",
    "pandas.core.computation",
    "scipy.io",
    "sklearn.datasets",
    "transformers.utils.hub",
    "transformers.pipelines",
];

/// Individual callables denied in modules that are otherwise fine or unknown.
const DENY_NAMES: &[(&str, &str)] = &[
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "execfile"),
    ("builtins", "compile"),
    ("builtins", "open"),
    ("builtins", "getattr"),
    ("builtins", "setattr"),
    ("builtins", "delattr"),
    ("builtins", "__import__"),
    ("builtins", "apply"),
    ("builtins", "breakpoint"),
    ("builtins", "input"),
    ("builtins", "globals"),
    ("builtins", "locals"),
    ("builtins", "vars"),
    ("builtins", "help"),
    ("builtins", "exit"),
    ("builtins", "quit"),
    ("builtins", "memoryview"),
    ("builtins", "type"),
    ("builtins", "super"),
    ("io", "open"),
    ("io", "FileIO"),
    ("io", "open_code"),
    ("_io", "open"),
    ("_io", "FileIO"),
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("operator", "itemgetter"),
    ("_operator", "attrgetter"),
    ("_operator", "methodcaller"),
    ("_operator", "itemgetter"),
    ("functools", "partial"),
    ("functools", "reduce"),
    ("functools", "partialmethod"),
    ("_functools", "partial"),
    ("_functools", "reduce"),
    ("uuid", "_get_command_stdout"),
    ("uuid", "_popen"),
    ("uuid", "_find_mac"),
    ("torch", "load"),
    ("torch", "save"),
    ("torch", "from_file"),
    ("torch.storage", "_load_from_bytes"),
    ("numpy", "load"),
    ("numpy", "save"),
    ("numpy", "fromfile"),
    ("numpy", "loadtxt"),
    ("numpy", "genfromtxt"),
    ("joblib", "load"),
    ("codecs", "open"),
    ("gzip", "open"),
    ("bz2", "open"),
    ("lzma", "open"),
    ("pandas", "read_pickle"),
    ("pandas", "read_csv"),
    ("pandas", "read_json"),
    ("pandas", "read_html"),
    ("pandas", "read_sql"),
    ("pandas", "eval"),
    ("transformers", "pipeline"),
    ("joblib.numpy_pickle", "load"),
    ("copyreg", "_reconstructor_unsafe"),
];

/// Method names that load files, fetch data or run code, when reached as `Class.method`.
const DENY_METHODS: &[&str] = &[
    "from_pretrained",
    "load",
    "loads",
    "load_model",
    "load_state_dict_from_url",
    "system",
    "popen",
    "eval",
    "exec",
    "run",
    "call",
    "check_output",
    "open",
    "read_pickle",
    "runcode",
    "runsource",
    "spawn",
    "urlopen",
    "download",
    "write_text",
    "write_bytes",
    "read_text",
    "read_bytes",
    "unlink",
    "rmdir",
    "rmtree",
    "mkdir",
    "touch",
    "rename",
    "replace",
    "chmod",
    "symlink_to",
];

/// Modules whose classes show up in ordinary model and data pickles.
const ALLOW_MODULES: &[&str] = &[
    "collections",
    "copyreg",
    "copy_reg",
    "datetime",
    "decimal",
    "fractions",
    "numbers",
    "uuid",
    "enum",
    "pathlib",
    "re",
    "_codecs",
    "codecs",
    "array",
    "numpy",
    "torch",
    "sklearn",
    "scipy",
    "pandas",
    "xgboost",
    "lightgbm",
    "catboost",
    "joblib.numpy_pickle",
    "joblib.numpy_pickle_utils",
    "transformers",
    "tokenizers",
    "sentence_transformers",
    "_collections_abc",
    "argparse",
    "typing",
    "dataclasses",
];

/// Callables allowed from modules that are not allowed as a whole.
const ALLOW_NAMES: &[(&str, &str)] = &[
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "range"),
    ("builtins", "xrange"),
    ("builtins", "unicode"),
    ("builtins", "long"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("builtins", "str"),
    ("builtins", "bool"),
    ("builtins", "object"),
    ("builtins", "NoneType"),
    ("builtins", "Ellipsis"),
    ("io", "BytesIO"),
    ("_io", "BytesIO"),
    ("io", "StringIO"),
    ("_io", "StringIO"),
];

/// The verdict on one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Runs code, touches files or the network.
    Dangerous,
    /// Known to be harmless.
    Safe,
    /// Neither: worth a look.
    Unknown,
}

fn module_matches(module: &str, entry: &str) -> bool {
    module == entry
        || module
            .strip_prefix(entry)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Classify `module.name` (Python 2 names are mapped to Python 3 ones first).
pub fn classify(module: &str, name: &str) -> Verdict {
    let module = module.trim();
    let name = name.trim();
    let module = match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        m => m,
    };
    let first = name.split('.').next().unwrap_or(name);
    // `module.attr` given as module `module` and name `attr.sub`: also match `module.attr`.
    let full = format!("{module}.{first}");
    // Dunder attributes (`__globals__`, `__subclasses__`) are sandbox escapes.
    if name
        .split('.')
        .any(|seg| seg.starts_with("__") && seg.ends_with("__") && seg != "__main__")
        && !(module == "builtins" && name == "__build_class__")
    {
        return Verdict::Dangerous;
    }
    // `Class.method` names reach methods that load or run things (`AutoModel.from_pretrained`,
    // `Booster.load_model`), whatever the class's module.
    if name.contains('.')
        && name
            .rsplit('.')
            .next()
            .is_some_and(|m| DENY_METHODS.contains(&m))
    {
        return Verdict::Dangerous;
    }
    if DENY_MODULES
        .iter()
        .any(|d| module_matches(module, d) || module_matches(&full, d))
        || DENY_NAMES.iter().any(|(m, n)| *m == module && *n == first)
    {
        return Verdict::Dangerous;
    }
    if ALLOW_NAMES.iter().any(|(m, n)| *m == module && *n == first)
        || ALLOW_MODULES.iter().any(|a| module_matches(module, a))
    {
        return Verdict::Safe;
    }
    if module == "builtins" && first.chars().next().is_some_and(char::is_uppercase) {
        // Exception classes and other builtin types: data, not calls.
        return Verdict::Safe;
    }
    Verdict::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_list_covers_the_known_gadgets() {
        for (m, n) in [
            ("os", "system"),
            ("posix", "system"),
            ("nt", "system"),
            ("subprocess", "Popen"),
            ("builtins", "eval"),
            ("__builtin__", "eval"),
            ("runpy", "_run_code"),
            ("webbrowser", "open"),
            ("socket", "create_connection"),
            ("shutil", "rmtree"),
            ("pty", "spawn"),
            ("builtins", "getattr"),
            ("operator", "attrgetter"),
            ("functools", "partial"),
            ("pip", "main"),
            ("asyncio.unix_events", "_UnixSubprocessTransport._start"),
            ("cProfile", "run"),
            ("timeit", "timeit"),
            ("pydoc", "locate"),
            ("pkgutil", "resolve_name"),
            ("uuid", "_get_command_stdout"),
            ("_osx_support", "_read_output"),
            ("imaplib", "IMAP4_stream"),
            ("ctypes", "CDLL"),
            ("io", "FileIO"),
            ("urllib.request", "urlopen"),
            ("logging", "FileHandler"),
            ("distutils.file_util", "write_file"),
            ("ensurepip", "_run_pip"),
            ("torch.utils.collect_env", "run"),
            ("torch._inductor.codecache", "compile_file"),
            ("torch.serialization", "load"),
            ("numpy.f2py.crackfortran", "getlincoef"),
            ("code", "InteractiveInterpreter.runcode"),
            ("_posixsubprocess", "fork_exec"),
            ("multiprocessing.util", "spawnv_passfds"),
            ("importlib", "import_module"),
            ("os.path", "exists"),
            ("torch", "load"),
            ("numpy", "__class__"),
            ("codecs", "open"),
            ("gzip", "open"),
            ("bz2", "open"),
            ("lzma", "open"),
            ("pandas", "read_pickle"),
            ("pandas.io.pickle", "read_pickle"),
            ("transformers", "AutoModel.from_pretrained"),
            ("xgboost.core", "Booster.load_model"),
            ("pathlib", "Path.write_text"),
            ("codecs", "open"),
            ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
            ("collections", "OrderedDict.__init__.__globals__"),
        ] {
            assert_eq!(classify(m, n), Verdict::Dangerous, "{m}.{n}");
        }
    }

    #[test]
    fn common_model_classes_are_safe() {
        for (m, n) in [
            ("collections", "OrderedDict"),
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "FloatStorage"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy", "dtype"),
            ("numpy", "ndarray"),
            ("_codecs", "encode"),
            ("joblib.numpy_pickle", "NumpyArrayWrapper"),
            ("sklearn.linear_model._logistic", "LogisticRegression"),
            ("builtins", "set"),
            ("__builtin__", "set"),
            ("copy_reg", "_reconstructor"),
        ] {
            assert_eq!(classify(m, n), Verdict::Safe, "{m}.{n}");
        }
    }

    #[test]
    fn others_are_unknown() {
        assert_eq!(classify("mylib.models", "Net"), Verdict::Unknown);
        assert_eq!(classify("osx", "thing"), Verdict::Unknown);
    }
}
