#!/usr/bin/env node
/*
 * readme-table.js -- the fault-suite results in docs/reliability.md come from the last
 * run's Markdown file (t/fault/run.js --out), never typed by hand.
 *
 *   node t/fault/readme-table.js --from LAST-RUN.md --readme docs/reliability.md
 *       replaces what lies between the document's two markers with the
 *       file's table, result line and notes (`make fault-readme`);
 *   node t/fault/readme-table.js --check --from LAST-RUN.md --readme docs/reliability.md
 *       checks that both hold a table of the same shape: the same header,
 *       and the run's scenarios among the document's, in the same order
 *       (`make fault` runs it after the suite).
 *
 * Exit status 0 when done or when the shapes agree, 1 otherwise, 2 on
 * bad usage.
 */
'use strict';

const fs = require('node:fs');

const BEGIN = '<!-- fault-table: copied by `make fault-readme` from t/fault/last-run.md; do not edit by hand -->';
const END = '<!-- end of fault-table -->';

function die(code, msg) {
    process.stderr.write(`readme-table: ${msg}\n`);
    process.exit(code);
}

function parseArgs(argv) {
    const o = { check: false, from: null, readme: null };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--check') o.check = true;
        else if (a === '--from' && i + 1 < argv.length) o.from = argv[++i];
        else if (a === '--readme' && i + 1 < argv.length) o.readme = argv[++i];
        else die(2, `unknown or incomplete argument ${a}\nusage: readme-table.js [--check] --from FILE --readme FILE.md`);
    }
    if (!o.from || !o.readme) die(2, '--from and --readme are required');
    return o;
}

/* The first Markdown table in text: {head, rows: [scenario label]}. */
function tableShape(text, what) {
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith('| scenario |'));
    if (at < 0 || !/^\|[-:| ]+\|$/.test(lines[at + 1] || '')) die(1, `${what}: no results table`);
    const rows = [];
    for (let i = at + 2; i < lines.length && lines[i].startsWith('|'); i++) {
        rows.push(lines[i].split('|')[1].replace(/\s*\*\*FAILED\*\*\s*$/, '').trim());
    }
    return { head: lines[at], sep: lines[at + 1], rows };
}

/* The document's block between the markers: [before, block, after]. */
function splitReadme(text, file) {
    const b = text.indexOf(BEGIN);
    const e = text.indexOf(END);
    if (b < 0 || e < b) die(1, `${file}: the markers of the fault-suite table are missing:\n${BEGIN}\n${END}`);
    return [text.slice(0, b + BEGIN.length), text.slice(b + BEGIN.length, e), text.slice(e)];
}

function main() {
    const o = parseArgs(process.argv.slice(2));
    let run;
    let readme;
    try {
        run = fs.readFileSync(o.from, 'utf8');
        readme = fs.readFileSync(o.readme, 'utf8');
    } catch (e) {
        die(1, e.message);
    }
    const [before, block, after] = splitReadme(readme, o.readme);
    const got = tableShape(run, o.from);
    if (o.check) {
        const want = tableShape(block, `${o.readme} (fault-suite section)`);
        const problems = [];
        if (got.head !== want.head) problems.push(`header differs:\n  run:    ${got.head}\n  doc:    ${want.head}`);
        if (got.sep !== want.sep) problems.push(`column alignment differs:\n  run:    ${got.sep}\n  doc:    ${want.sep}`);
        let k = 0;
        for (const r of got.rows) {
            while (k < want.rows.length && want.rows[k] !== r) k++;
            if (k === want.rows.length) { problems.push(`scenario "${r}" is not in the document's table, or not in that order`); break; }
        }
        if (problems.length) {
            die(1, `the fault-suite table of ${o.readme} and ${o.from} differ in shape; run \`make fault-readme\` ` +
                `after a full \`make fault\`:\n${problems.join('\n')}`);
        }
        process.stdout.write(`readme-table: the fault-suite table of ${o.readme} has the shape of ${o.from}\n`);
        return;
    }
    /* the run's text without its heading, which names the date */
    const m = /^## reporterd fault-injection run \(([^)]*)\)\n+/.exec(run);
    const body = (m ? run.slice(m[0].length) : run).trim();
    const out = `${before}\n\nRun of ${m ? m[1] : 'unknown date'}:\n\n${body}\n\n${after}`;
    fs.writeFileSync(o.readme, out);
    process.stdout.write(`readme-table: copied ${o.from} into ${o.readme}\n`);
}

main();
