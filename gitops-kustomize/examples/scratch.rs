use gitops_core::{Blob, Snapshot};
use serde_json::Value;
use std::hash::{Hash, Hasher};
use std::time::Instant;

fn snapshot_of(dir: &std::path::Path) -> Snapshot {
    fn walk(base: &std::path::Path, dir: &std::path::Path, snap: &mut Snapshot) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(base, &p, snap)
            } else if ft.is_file() {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                snap.insert(rel, Blob::from_bytes(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut s = Snapshot::new();
    walk(dir, dir, &mut s);
    s
}

fn fp(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => h.write_u8(if *b { 1 } else { 2 }),
        Value::Number(n) => {
            h.write_u8(3);
            n.to_string().hash(h)
        }
        Value::String(s) => {
            h.write_u8(4);
            h.write(s.as_bytes());
            h.write_u8(0xff)
        }
        Value::Array(a) => {
            h.write_u8(5);
            h.write_usize(a.len());
            a.iter().for_each(|x| fp(x, h))
        }
        Value::Object(m) => {
            h.write_u8(6);
            h.write_usize(m.len());
            for (k, x) in m {
                h.write(k.as_bytes());
                fp(x, h)
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let t = Instant::now();
    let snap = snapshot_of(std::path::Path::new(&args[1]));
    eprintln!("snapshot {:?}", t.elapsed());
    let reps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    for _ in 0..reps {
        let t = Instant::now();
        let objs = gitops_kustomize::build(&snap, &args[2]).unwrap();
        eprintln!("build {:?} ({} objs)", t.elapsed(), objs.len());
        let t = Instant::now();
        let c = objs.clone();
        eprintln!("clone {:?}", t.elapsed());
        let t = Instant::now();
        assert!(c == objs);
        eprintln!("compare {:?}", t.elapsed());
        let t = Instant::now();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        objs.iter().for_each(|o| fp(o, &mut h));
        eprintln!("siphash {:?} {}", t.elapsed(), h.finish());
        let t = Instant::now();
        let mut s = String::new();
        for o in &objs {
            s.push_str(&serde_yaml::to_string(o).unwrap());
        }
        eprintln!("to_yaml {:?} {}", t.elapsed(), s.len());
    }
}
