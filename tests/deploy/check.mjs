// tests/deploy/check.mjs: checks deploy/ without a cluster or a container
// engine.
//
//   node check.mjs [--containerfile FILE] [--context DIR] MANIFEST|DIR...
//
// Every YAML document of the manifests (files, or directories searched
// recursively for *.yaml) is validated against the Kubernetes API's schema
// of its kind (the npm package kubernetes-models, version pinned in
// package-lock.json), then against the rules the schema lacks, which are
// what kvfs's node daemon and its consumers rely on (deploy/README.md):
//
// - a Bidirectional mount is in a privileged container (the API server
//   refuses it otherwise), and a namespace defined here that runs one
//   enforces Pod Security "privileged";
// - there is a kvfs pod (one with a Bidirectional hostPath: its path is a
//   kvfs root, the vaults are mounted below it); each of its containers
//   mounts (deploy/kubernetes/kvfs-node-start: KVFS_MOUNTPOINT, by default
//   /run/kvfs/<KVFS_VAULT>, from its ConfigMap) below its Bidirectional
//   mount, and has a startup and a liveness probe reading the mount's
//   .kvfs/status and a preStop hook; with workload identity, its
//   ServiceAccount carries the client ID;
// - every container has an image;
// - a consumer (any other pod) mounts no hostPath inside a kvfs root, and
//   mounts the root (or a parent of it) read-only with HostToContainer.
//
// With --containerfile, the image recipe is checked too: FROM Debian 12,
// the project's .deb copied in and installed with apt-get, and the
// entrypoint the start script copied from deploy/kubernetes (which must
// exist under --context, default the current directory).
//
// Every problem is printed as one line, "FILE: KIND/NAME: what"; the exit
// status is 1 when there is any, 2 on a usage error.  Single-threaded.
import fs from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const problems = [];
function problem(where, what) {
	problems.push(`${where}: ${what}`);
}

function yamlFiles(p) {
	if (!fs.statSync(p).isDirectory())
		return [p];
	return fs.readdirSync(p).sort().flatMap((e) => {
		const q = path.join(p, e);
		if (fs.statSync(q).isDirectory())
			return yamlFiles(q);
		return /\.ya?ml$/.test(e) ? [q] : [];
	});
}

// The kubernetes-models class of apiVersion and kind, or null.
async function model(apiVersion, kind) {
	if (typeof apiVersion !== "string" || !/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion))
		return null;
	try {
		const mod = await import(`kubernetes-models/${apiVersion}`);
		return mod[kind] ?? null;
	} catch {
		return null;
	}
}

// The pod spec of a workload, or null.
function podSpec(doc) {
	switch (doc.kind) {
	case "Pod":
		return doc.spec;
	case "CronJob":
		return doc.spec?.jobTemplate?.spec?.template?.spec;
	case "DaemonSet":
	case "Deployment":
	case "StatefulSet":
	case "ReplicaSet":
	case "Job":
		return doc.spec?.template?.spec;
	default:
		return null;
	}
}

function podLabels(doc) {
	return (doc.kind === "Pod" ? doc.metadata?.labels : doc.spec?.template?.metadata?.labels) ?? {};
}

// "/a/b/" -> "/a/b"
function norm(p) {
	return path.posix.normalize(p).replace(/(.)\/$/, "$1");
}

function inside(p, root) {
	return p.startsWith(root + "/");
}

function probeCommand(probe) {
	return probe?.exec?.command ?? null;
}

async function checkManifests(files) {
	const docs = [];
	for (const file of files) {
		const text = fs.readFileSync(file, "utf8");
		for (const d of parseAllDocuments(text)) {
			if (d.errors.length) {
				problem(file, "YAML: " + d.errors[0].message);
				continue;
			}
			const obj = d.toJS();
			if (obj === null || obj === undefined)
				continue;
			const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
			const Model = await model(obj.apiVersion, obj.kind);
			if (!Model) {
				problem(where, `no schema for apiVersion ${obj.apiVersion}, kind ${obj.kind}`);
				continue;
			}
			try {
				new Model(obj).validate();
			} catch (e) {
				problem(where, "schema: " + e.message);
				continue;
			}
			docs.push({ obj, where });
		}
	}

	const named = (kind, ns, name) =>
		docs.find(({ obj }) => obj.kind === kind && obj.metadata?.name === name &&
			(obj.metadata?.namespace ?? "default") === ns)?.obj;
	const pods = docs.filter(({ obj }) => podSpec(obj));

	// The kvfs pods and their roots; every container's image; Bidirectional
	// => privileged.
	const roots = new Set();
	const kvfsPods = [];
	for (const pod of pods) {
		const spec = podSpec(pod.obj);
		const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
		const containers = [...(spec.initContainers ?? []), ...spec.containers];
		let isKvfs = false;
		for (const c of containers) {
			if (!c.image)
				problem(pod.where, `container ${c.name} has no image`);
			for (const m of c.volumeMounts ?? []) {
				if (m.mountPropagation !== "Bidirectional")
					continue;
				if (c.securityContext?.privileged !== true)
					problem(pod.where, `container ${c.name} mounts ${m.name} Bidirectional but is not privileged`);
				const hp = volumes.get(m.name)?.hostPath;
				if (hp) {
					roots.add(norm(hp.path));
					isKvfs = true;
				}
			}
		}
		const ns = pod.obj.metadata?.namespace ?? "default";
		const nsDoc = docs.find(({ obj }) => obj.kind === "Namespace" && obj.metadata?.name === ns)?.obj;
		if (containers.some((c) => c.securityContext?.privileged === true) && nsDoc &&
			nsDoc.metadata?.labels?.["pod-security.kubernetes.io/enforce"] !== "privileged")
			problem(pod.where, `runs a privileged container in namespace ${ns}, which does not enforce Pod Security "privileged"`);
		if (isKvfs)
			kvfsPods.push(pod);
	}
	if (kvfsPods.length === 0)
		problem(files.join(" "), "no kvfs pod: no workload mounts a hostPath Bidirectional");

	// The kvfs pods' probes, preStop and identity.
	for (const pod of kvfsPods) {
		const spec = podSpec(pod.obj);
		const ns = pod.obj.metadata?.namespace ?? "default";
		const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
		for (const c of spec.containers) {
			const mount = (c.volumeMounts ?? []).find((m) =>
				m.mountPropagation === "Bidirectional" && volumes.get(m.name)?.hostPath);
			if (!mount)
				continue;
			const envs = (c.envFrom ?? []).map((e) => e.configMapRef &&
				named("ConfigMap", ns, e.configMapRef.name)?.data).filter((d) => d?.KVFS_VAULT);
			if (envs.length !== 1) {
				problem(pod.where, `container ${c.name}: no ConfigMap here gives it KVFS_VAULT`);
				continue;
			}
			// kvfs-node-start's mount point
			const mnt = norm(envs[0].KVFS_MOUNTPOINT ?? `/run/kvfs/${envs[0].KVFS_VAULT}`);
			if (!inside(mnt, norm(mount.mountPath)))
				problem(pod.where, `container ${c.name}: kvfs mounts ${mnt}, not below its Bidirectional ${mount.mountPath}`);
			const status = path.posix.join(mnt, ".kvfs/status");
			for (const p of ["startupProbe", "livenessProbe"]) {
				const cmd = probeCommand(c[p]);
				if (!cmd)
					problem(pod.where, `container ${c.name} has no ${p} (exec)`);
				else if (!cmd.includes(status))
					problem(pod.where, `container ${c.name}: its ${p} does not read ${status}`);
			}
			if (!c.lifecycle?.preStop)
				problem(pod.where, `container ${c.name} has no preStop hook to unmount`);
		}
		if (podLabels(pod.obj)["azure.workload.identity/use"] === "true") {
			const sa = named("ServiceAccount", ns, spec.serviceAccountName ?? "default");
			if (!sa?.metadata?.annotations?.["azure.workload.identity/client-id"])
				problem(pod.where, `uses workload identity, but no ServiceAccount ${ns}/${spec.serviceAccountName} here carries azure.workload.identity/client-id`);
		}
	}

	// The consumers.
	for (const pod of pods) {
		if (kvfsPods.includes(pod))
			continue;
		const spec = podSpec(pod.obj);
		const containers = [...(spec.initContainers ?? []), ...spec.containers];
		for (const v of spec.volumes ?? []) {
			if (!v.hostPath)
				continue;
			const p = norm(v.hostPath.path);
			for (const root of roots) {
				if (inside(p, root)) {
					problem(pod.where, `volume ${v.name} is the hostPath ${p}, inside the kvfs mounts under ${root}: it stays ENOTCONN once kvfs restarts; mount ${root} and read below it`);
					continue;
				}
				if (p !== root && !inside(root, p) && p !== "/")
					continue;
				for (const c of containers) {
					for (const m of (c.volumeMounts ?? []).filter((m) => m.name === v.name)) {
						if (m.readOnly !== true)
							problem(pod.where, `container ${c.name} mounts ${p} (kvfs) without readOnly: true`);
						if (m.mountPropagation !== "HostToContainer")
							problem(pod.where, `container ${c.name} mounts ${p} (kvfs) without mountPropagation: HostToContainer: it would never see a mount made after it started`);
					}
				}
			}
		}
	}
}

// The Containerfile's instructions, continuation lines joined, comments
// dropped: [{op, arg}].
function instructions(text) {
	const out = [];
	let cur = "";
	for (const line of text.split("\n")) {
		if (/^\s*#/.test(line) && cur === "")
			continue;
		if (/\\\s*$/.test(line)) {
			cur += line.replace(/\\\s*$/, " ");
			continue;
		}
		cur += line;
		const m = cur.trim().match(/^(\w+)\s+(.*)$/s);
		if (m)
			out.push({ op: m[1].toUpperCase(), arg: m[2].replace(/\s+/g, " ").trim() });
		cur = "";
	}
	return out;
}

function checkContainerfile(file, context) {
	const ins = instructions(fs.readFileSync(file, "utf8"));
	const from = ins.filter((i) => i.op === "FROM");
	if (from.length === 0 || !/^(docker\.io\/(library\/)?)?debian:(12|bookworm)(-slim)?(\s+AS\s+\S+)?$/i.test(from[from.length - 1].arg))
		problem(file, "the image is not built FROM debian:12 (or bookworm)");
	const copies = ins.filter((i) => i.op === "COPY").map((i) => i.arg.split(" "));
	const deb = copies.find((a) => a.some((s) => /(^|\/)build-deb\/kvfs_\*\.deb$/.test(s)));
	if (!deb)
		problem(file, "no COPY of the project's .deb (build-deb/kvfs_*.deb)");
	const installs = ins.filter((i) => i.op === "RUN")
		.flatMap((i) => [...i.arg.matchAll(/apt-get( -\S+)* install ([^&;|]*)/g)].map((m) => m[2]));
	if (!installs.some((a) => a.split(" ").some((s) => /(^|\/)kvfs_\*\.deb$/.test(s))))
		problem(file, "no RUN apt-get install of the kvfs_*.deb");
	const script = copies.find((a) => a.includes("deploy/kubernetes/kvfs-node-start"));
	if (!script)
		problem(file, "no COPY of deploy/kubernetes/kvfs-node-start");
	else if (!fs.existsSync(path.join(context, "deploy/kubernetes/kvfs-node-start")))
		problem(file, `${path.join(context, "deploy/kubernetes/kvfs-node-start")} does not exist`);
	const entry = ins.filter((i) => i.op === "ENTRYPOINT").pop();
	let argv = null;
	try {
		argv = entry && JSON.parse(entry.arg);
	} catch {
		argv = null;
	}
	const dest = script?.[script.length - 1];
	if (!Array.isArray(argv) || !dest || (argv[0] !== dest && path.posix.join(dest, "kvfs-node-start") !== argv[0]))
		problem(file, `the ENTRYPOINT (exec form) is not the start script copied to ${dest}`);
}

const args = process.argv.slice(2);
let containerfile = null;
let context = ".";
const paths = [];
while (args.length) {
	const a = args.shift();
	if (a === "--containerfile")
		containerfile = args.shift();
	else if (a === "--context")
		context = args.shift();
	else if (a.startsWith("-")) {
		console.error(`usage: check.mjs [--containerfile FILE] [--context DIR] MANIFEST|DIR...`);
		process.exit(2);
	} else
		paths.push(a);
}
if (paths.length === 0) {
	console.error("check.mjs: no manifest given");
	process.exit(2);
}
await checkManifests(paths.flatMap(yamlFiles));
if (containerfile)
	checkContainerfile(containerfile, context);
for (const p of problems)
	console.log(p);
process.exit(problems.length ? 1 : 0);
