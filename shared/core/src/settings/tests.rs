//! The reader's rules, and README's table against [`VARS`].

use super::*;
use std::collections::HashMap;

fn read_as(program: Program, pairs: &[(&str, &str)]) -> Result<Settings, String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Settings::read(program, |name| map.get(name).cloned())
}

fn read(pairs: &[(&str, &str)]) -> Result<Settings, String> {
    read_as(Program::Cli, pairs)
}

#[test]
fn defaults_come_from_the_table() {
    let settings = Settings::defaults();
    assert_eq!(settings.store.kind, StoreKind::Sqlite);
    assert_eq!(settings.store.table, "colloquy");
    assert_eq!((settings.limits.max_body_bytes, settings.limits.max_upload_bytes), (1 << 20, 100 << 20));
    assert_eq!(settings.server.addr.to_string(), "127.0.0.1:5001");
    assert_eq!(settings.server.max_in_flight, 1024);
    assert_eq!(settings.cors, Cors::AnyOrigin);
    assert_eq!(settings.log.format, LogFormat::Text);
    assert_eq!(settings.models.default, "echo");
    assert!(settings.models.openai.is_none() && settings.models.bedrock.is_none());
    assert_eq!((settings.speech.tts.clone(), settings.speech.stt.clone()), (TtsChoice::Auto, SttChoice::Auto));
    // Every default parses as its setting: no other defaults exist.
    for var in VARS {
        assert!(var.name.starts_with("COLLOQUY_"), "{}", var.name);
        assert_eq!(VARS.iter().filter(|v| v.name == var.name).count(), 1, "{} twice", var.name);
    }
}

#[test]
fn one_path_style_rule() {
    assert!(!read(&[]).unwrap().store.s3_path_style);
    assert!(read(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]).unwrap().store.s3_path_style);
    assert!(read(&[("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")]).unwrap().store.s3_path_style);
    assert!(
        !read(&[("AWS_ENDPOINT_URL", "http://x"), ("COLLOQUY_S3_PATH_STYLE", "false")]).unwrap().store.s3_path_style
    );
    assert!(read(&[("COLLOQUY_S3_PATH_STYLE", "1")]).unwrap().store.s3_path_style);
    assert!(read(&[("COLLOQUY_S3_PATH_STYLE", "maybe")]).is_err());
    assert_eq!(read(&[]).unwrap().store.cert_file, None);
    let own = read(&[("SSL_CERT_FILE", "/etc/my-ca.pem")]).unwrap().store.cert_file;
    assert_eq!(own, Some(PathBuf::from("/etc/my-ca.pem")));
}

#[test]
fn credentials_in_the_environment_are_seen() {
    assert!(!read(&[]).unwrap().store.env_credentials);
    // Half a key pair is left to the SDK's default chain, which reports what is missing.
    assert!(!read(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")]).unwrap().store.env_credentials);
    assert!(!read(&[("AWS_ACCESS_KEY_ID", " "), ("AWS_SECRET_ACCESS_KEY", "s")]).unwrap().store.env_credentials);
    let lambda = [
        ("COLLOQUY_TABLE", "t"),
        ("COLLOQUY_BUCKET", "b"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];
    assert!(read_as(Program::Lambda, &lambda).unwrap().store.env_credentials);
}

#[test]
fn a_region_in_the_environment_is_seen() {
    assert!(!read(&[]).unwrap().store.env_region);
    assert!(read(&[("AWS_REGION", "eu-west-1")]).unwrap().store.env_region);
    assert!(read(&[("AWS_DEFAULT_REGION", "eu-west-1")]).unwrap().store.env_region);
    assert!(!read(&[("AWS_REGION", "")]).unwrap().store.env_region);
}

#[test]
fn lambda_needs_its_table_and_bucket_and_has_no_local_engines() {
    let error = read_as(Program::Lambda, &[("COLLOQUY_BUCKET", "b")]).unwrap_err();
    assert!(error.contains("COLLOQUY_TABLE"), "{error}");
    let settings = read_as(
        Program::Lambda,
        &[("COLLOQUY_TABLE", "t"), ("COLLOQUY_BUCKET", "b"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")],
    )
    .unwrap();
    assert_eq!(settings.store.kind, StoreKind::Dynamodb);
    assert_eq!((settings.speech.tts, settings.speech.stt), (TtsChoice::None, SttChoice::None));
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.key_cache, Duration::from_secs(10), "Lambda caches keys unless told not to");
    assert_eq!(Settings::defaults().key_cache, Duration::ZERO, "the local server does not");
    assert!(read(&[("COLLOQUY_KEY_CACHE_SECONDS", "11")]).is_err());
    assert_eq!(read(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).unwrap().log.format, LogFormat::Text);
    assert_eq!(read(&[("COLLOQUY_LOG_FORMAT", "json")]).unwrap().log.format, LogFormat::Json);
    assert!(read(&[("COLLOQUY_LOG_FORMAT", "xml")]).is_err());
}

#[test]
fn openai_settings_and_secrets() {
    let settings = read(&[
        ("COLLOQUY_LLM", "openai"),
        ("COLLOQUY_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
        ("COLLOQUY_OPENAI_MODEL", "llama3"),
        ("COLLOQUY_OPENAI_API_KEY", "sk-very-secret"),
    ])
    .unwrap();
    let openai = settings.models.openai.clone().unwrap();
    assert_eq!((openai.base_url.as_str(), openai.model.as_str()), ("http://127.0.0.1:11434/v1", "llama3"));
    assert_eq!(openai.api_key.as_ref().map(Secret::expose), Some("sk-very-secret"));
    let printed = format!("{settings:?} {}", openai.api_key.unwrap());
    assert!(!printed.contains("sk-very-secret") && printed.contains("[redacted]"), "{printed}");
    assert!(read(&[("COLLOQUY_LLM", "gpt")]).is_err());
    assert!(read(&[("COLLOQUY_ECHO_DELAY_MS", "soon")]).is_err());
    assert!(read(&[("COLLOQUY_MAX_BODY_BYTES", "big")]).is_err());
    assert!(read(&[("COLLOQUY_CORS_ORIGINS", "ftp://x")]).is_err());
}

#[test]
fn speech_settings() {
    let settings = read(&[
        ("COLLOQUY_TTS", "openai"),
        ("COLLOQUY_STT", "transcribe"),
        ("COLLOQUY_OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"),
        ("COLLOQUY_OPENAI_TTS_VOICES", "a, b,,c"),
        ("COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS", "10"),
    ])
    .unwrap();
    let openai = settings.speech.openai.clone().unwrap();
    assert_eq!(openai.base_url, "http://127.0.0.1:8080/v1");
    assert_eq!(openai.voices, vec!["a", "b", "c"]);
    assert!(matches!(settings.speech.stt, SttChoice::Transcribe { polling, .. } if polling.deadline.as_secs() == 10));
    assert!(settings.speech.needs_aws());
    assert!(read(&[("COLLOQUY_TTS", "festival")]).is_err());
    assert!(read(&[("COLLOQUY_STT", "whisper")]).is_err());
    assert!(read(&[("COLLOQUY_STT", "transcribe"), ("COLLOQUY_TRANSCRIBE_POLL_MS", "x")]).is_err());
}

#[test]
fn pocketsphinx_is_looked_for_where_the_install_script_puts_it() {
    let found = read(&[("HOME", "/home/u")]).unwrap().speech.pythons;
    assert_eq!(found, [PathBuf::from("/home/u/.cache/colloquy-emulators/speech/bin/python"), "python3".into()]);
    let found = read(&[("HOME", "/home/u"), ("COLLOQUY_EMULATOR_CACHE", "/c")]).unwrap().speech.pythons;
    assert_eq!(found[0], PathBuf::from("/c/speech/bin/python"));
    let found = read(&[("COLLOQUY_POCKETSPHINX_PYTHON", "/opt/py")]).unwrap().speech.pythons;
    assert_eq!(found, [PathBuf::from("/opt/py")]);
}

/// README's configuration table lists every setting with its default, and nothing else.
#[test]
fn readme_configuration_table_matches() {
    let readme = include_str!("../../../../README.md");
    let section = readme.split("### Configuration").nth(1).expect("README has a Configuration section");
    let table: Vec<&str> =
        section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
    let mut documented = Vec::new();
    for row in table.iter().skip(2) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let [flag, name, default, ..] = cells.as_slice() else { panic!("short row: {row}") };
        let name = name.trim_matches('`');
        let var = VARS.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("README documents unknown {name}"));
        let expected_flag = var.flag.map_or("—".to_owned(), |f| format!("`--{f}`"));
        assert_eq!(*flag, expected_flag, "flag of {name}");
        let expected_default = var.default.map_or("—".to_owned(), |d| format!("`{d}`"));
        assert_eq!(*default, expected_default, "default of {name}");
        documented.push(name);
    }
    for var in VARS {
        assert!(documented.contains(&var.name), "README's configuration table lacks {}", var.name);
    }
}
