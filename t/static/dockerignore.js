/*
 * dockerignore.js -- the files of a Docker build context: every file under
 * DIR that IGNOREFILE's rules leave in, one path per line (relative, '/'
 * separated), as the Docker builder applies a .dockerignore:
 *
 *   node dockerignore.js DIR IGNOREFILE
 *
 * Rules (docs.docker.com, "dockerignore file"): one pattern per line;
 * blank lines and lines starting with # are skipped; a leading and a
 * trailing / are dropped and the pattern cleaned as Go's filepath.Clean
 * does; `*` is any run of characters but /, `?` one character but /,
 * `[...]` a class, `**` any number of directories (zero included); `!`
 * makes an exception.  A path is left out when the last rule that matches
 * it or one of its parent directories is not an exception.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

function clean(p) {
    const out = [];
    for (const part of p.split('/')) {
        if (part === '' || part === '.') continue;
        if (part === '..') out.pop(); else out.push(part);
    }
    return out.join('/');
}

function toRegExp(pattern) {
    let re = '';
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === '*' && pattern[i + 1] === '*') {
            /* "**" alone as a component: any number of directories */
            if (pattern[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } else { re += '.*'; i += 1; }
        } else if (c === '*') {
            re += '[^/]*';
        } else if (c === '?') {
            re += '[^/]';
        } else if (c === '[') {
            const end = pattern.indexOf(']', i + 1);
            if (end < 0) { re += '\\['; continue; }
            let cls = pattern.slice(i + 1, end);
            if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
            re += `[${cls.replace(/\\/g, '\\\\')}]`;
            i = end;
        } else if (c === '\\' && i + 1 < pattern.length) {
            re += pattern[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
        } else {
            re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
        }
    }
    return new RegExp(`^${re}$`);
}

function rules(file) {
    const out = [];
    for (let line of fs.readFileSync(file, 'utf8').split('\n')) {
        line = line.trim();
        if (!line || line.startsWith('#')) continue;
        const exception = line.startsWith('!');
        const p = clean(exception ? line.slice(1).trim() : line);
        if (p) out.push({ exception, re: toRegExp(p) });
    }
    return out;
}

function excluded(rel, rs) {
    const parts = rel.split('/');
    let out = false;
    for (const r of rs) {
        for (let k = 1; k <= parts.length; k++) {
            if (r.re.test(parts.slice(0, k).join('/'))) { out = !r.exception; break; }
        }
    }
    return out;
}

function walk(dir, rel, rs, out) {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(dir, p, rs, out);
        else if (!excluded(p, rs)) out.push(p);
    }
}

if (require.main === module) {
    const [dir, ignore] = process.argv.slice(2);
    if (!dir || !ignore) {
        process.stderr.write('usage: node dockerignore.js DIR IGNOREFILE\n');
        process.exit(2);
    }
    const out = [];
    walk(dir, '', rules(ignore), out);
    process.stdout.write(out.sort().join('\n') + '\n');
}

module.exports = { rules, excluded };
