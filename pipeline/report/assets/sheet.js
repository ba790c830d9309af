(() => {
  'use strict';
  performance.mark('ltx-sheet-start');
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const html = document.documentElement;
  const bar = document.getElementById('bar');
  const tables = $$('.tbl');
  const prompts = $$('#prompts li').map(li => li.textContent);
  const CELL = {prompt: 'p', seed: 's'};
  const json = text => { try { return text ? JSON.parse(text) : {}; } catch (e) { return {}; } };

  // ---- The bar's state (what a cell shows, table filters, tile size), kept in the URL's query.
  const selects = bar ? $$('select', bar) : [];
  const sides = bar ? $$('input[name=side]', bar) : [];
  const size = bar ? bar.querySelector('input[name=size]') : null;
  const cellAxes = new Set(sides.map(box => box.value));

  const restore = () => {
    const query = new URLSearchParams(location.search);
    for (const select of selects) {
      const want = query.get(select.name);
      select.value = want !== null && [...select.options].some(o => o.value === want) ? want : select.dataset.d;
    }
    const side = (query.get('side') || '').split(',');
    for (const box of sides) box.checked = side.includes(box.value);
    if (size) size.value = query.get('size') || size.dataset.d;
  };

  const save = () => {
    const query = new URLSearchParams();  // in the bar's order, defaults left out
    for (const select of selects) if (select.value !== select.dataset.d) query.set(select.name, select.value);
    const side = sides.filter(box => box.checked).map(box => box.value).join(',');
    if (side) query.set('side', side);
    if (size && size.value !== size.dataset.d) query.set('size', size.value);
    const url = new URL(location.href);
    url.search = query.toString();
    if (url.href !== location.href) {
      try { history.replaceState(history.state, '', url); } catch (e) { /* a browser refusing file: URLs */ }
    }
  };

  // Per table: the values each cell axis takes there, in page order (the selectors fall back to the first).
  for (const table of tables) {
    table.avail = {};
    for (const axis of (table.dataset.cell || '').split(' ').filter(Boolean)) {
      const key = CELL[axis];
      table.avail[axis] = [...new Set($$('.t', table).map(t => t.dataset[key]))];
    }
    if (table.avail.seed) {
      const counts = $$('.cell', table).map(c => new Set($$('.t', c).map(t => t.dataset.s)).size);
      table.style.setProperty('--n', Math.max(1, ...counts));
    }
  }

  const apply = () => {
    if (size) html.dataset.size = size.value;
    for (const box of sides) html.classList.toggle('side-' + box.value, box.checked);
    const side = Object.fromEntries(sides.map(box => [box.value, box.checked]));
    const chosen = {}, wanted = [];
    for (const select of selects) {
      if (cellAxes.has(select.name)) chosen[select.name] = select.value;
      else if (select.value !== '') wanted.push([select.name, select.value]);
    }
    for (const table of tables) {
      const marks = new URLSearchParams(table.dataset.f || '');
      table.hidden = !wanted.every(([name, value]) => !marks.has(name) || marks.get(name) === value);
      const link = document.querySelector(`#toc li[data-t="${table.id}"]`);
      if (link) link.classList.toggle('off', table.hidden);
      const now = table.querySelector('.now');
      const axes = Object.keys(table.avail);
      if (!axes.length || table.hidden) continue;
      const show = {}, notes = [];
      for (const axis of axes) {
        const avail = table.avail[axis];
        const want = chosen[axis];
        show[axis] = avail.includes(want) ? want : avail[0];
        if (side[axis]) notes.push(`${axis}s side by side`);
        else if (show[axis] !== want) notes.push(`${label(axis, show[axis])} (this table has no ${label(axis, want)})`);
        else notes.push(label(axis, show[axis]));
      }
      for (const t of $$('.t', table)) {
        t.hidden = !axes.every(axis => side[axis] || t.dataset[CELL[axis]] === show[axis]);
      }
      now.textContent = 'each cell shows ' + notes.join(' · ');
      now.classList.toggle('warn', notes.some(n => n.includes('this table has no')));
    }
    for (const part of $$('section.part')) part.hidden = !part.querySelector('.tbl:not([hidden])');
    if (clock && (clock.scope.closest('[hidden]'))) release();
    save();
  };

  const label = (axis, value) => {
    if (axis === 'prompt') {
      const text = prompts[Number(value) - 1] || '';
      return `prompt ${value}: ${text.length > 90 ? text.slice(0, 89) + '…' : text}`;
    }
    return `${axis} ${value}`;
  };

  if (bar) {
    bar.addEventListener('input', apply);
    bar.addEventListener('change', apply);
    bar.addEventListener('submit', event => event.preventDefault());
    const measure = () => html.style.setProperty('--bar-h', bar.offsetHeight + 'px');
    measure();
    window.addEventListener('resize', measure);
  }
  restore();

  // ---- Players only near the screen: a tile gets a <video> when it comes near and gives it back when it
  // leaves (or is filtered out), so a page of 10,000 jobs holds a screenful of players, not 10,000.
  const attach = tile => {
    if (tile.querySelector('video')) return;
    const video = document.createElement('video');
    video.muted = true;
    video.defaultMuted = true;
    video.playsInline = true;
    video.preload = 'metadata';
    const image = tile.querySelector('img');
    if (image) video.poster = image.getAttribute('src');
    video.addEventListener('loadedmetadata', () => joined(video));
    video.src = tile.getAttribute('href');
    tile.append(video);
    tile.classList.add('on');
  };
  const detach = tile => {
    const video = tile.querySelector('video');
    if (!video) return;
    video.pause();
    video.removeAttribute('src');
    video.load();
    video.remove();
    tile.classList.remove('on');
  };
  const playable = $$('a.t[href]:not([data-m])');  // videos: an image tile shows itself, an audio one plays in the details
  if ('IntersectionObserver' in window) {
    const near = new IntersectionObserver(entries => {
      for (const {target, isIntersecting} of entries) (isIntersecting ? attach : detach)(target);
    }, {rootMargin: '400px 200px'});
    playable.forEach(tile => near.observe(tile));
  } else {
    playable.slice(0, 60).forEach(attach);
  }

  // ---- Synchronised playback: one clock for a row or a table. It starts (and restarts, after a scrub or at
  // its loop) by moving every player of the scope to the same moment, holding them until all can play, and
  // starting them in the same task; from then on a drifting player is nudged by its rate, or moved when far
  // off. The clock loops over the longest clip (shorter ones hold their last frame). One scope at a time.
  let clock = null;
  const TICK_MS = 100, SEEK_S = 0.25, NUDGE_S = 0.015, START_WAIT_MS = 600, END_S = 0.05;
  const members = scope => $$('.t:not([hidden]) video', scope);
  const now = c => c.playing && !c.starting ? c.base + (performance.now() - c.wall) / 1000 : c.base;
  const span = videos => videos.reduce((d, v) => Number.isFinite(v.duration) ? Math.max(d, v.duration) : d, 0);
  const controls = scope => scope.tagName === 'TR' ? scope.querySelector('th .sync')
    : scope.querySelector(':scope > .th .sync');

  const show = (c, t) => {
    const ui = controls(c.scope);
    if (!ui) return;
    const button = ui.querySelector('.play');
    button.textContent = c.playing ? '' : '▶';
    button.classList.toggle('on', c.playing);
    button.setAttribute('aria-pressed', String(c.playing));
    if (!clock || clock !== c) {  // released: back to rest
      ui.querySelector('.scrub').value = '0';
      ui.querySelector('.time').textContent = '';
    } else if (c.dur > 0) {
      ui.querySelector('.scrub').value = String(Math.round(Math.min(t / c.dur, 1) * 1000));
      ui.querySelector('.time').textContent = `${t.toFixed(1)} / ${c.dur.toFixed(1)} s`;
    }
  };
  const own = scope => {
    if (clock && clock.scope === scope) return clock;
    if (clock) release();
    clock = {scope, playing: false, starting: false, base: 0, wall: 0, dur: span(members(scope)), timer: 0, run: 0};
    scope.classList.add('synced');
    return clock;
  };
  const release = () => {
    const c = clock;
    if (!c) return;
    clock = null;
    clearInterval(c.timer);
    c.run += 1;
    for (const v of members(c.scope)) { v.pause(); v.playbackRate = 1; }
    c.scope.classList.remove('synced', 'playing');
    c.playing = c.starting = false;
    show(c, c.base);
  };
  const ended = (v, t) => t >= v.duration - END_S;
  const start = (c, t) => {
    c.base = t;
    c.starting = true;
    const run = c.run += 1;
    for (const v of members(c.scope)) {
      if (v.readyState < 1) continue;
      v.pause();
      v.playbackRate = 1;
      v.currentTime = Math.max(0, Math.min(t, v.duration - END_S));
    }
    const began = performance.now();
    const go = () => {
      if (clock !== c || !c.playing || c.run !== run) return;
      const waiting = members(c.scope).some(v => v.readyState >= 1 && !ended(v, t) && (v.seeking || v.readyState < 3));
      if (waiting && performance.now() - began < START_WAIT_MS) { setTimeout(go, 15); return; }
      c.starting = false;
      c.wall = performance.now();
      for (const v of members(c.scope)) if (v.readyState >= 1 && !ended(v, t)) v.play().catch(() => {});
    };
    go();
  };
  const align = (v, t, c, hard) => {
    if (v.readyState < 1 || c.starting) return;  // not loaded yet: it joins on loadedmetadata
    if (ended(v, t)) {  // a clip shorter than the clock: hold its last frame
      if (!v.paused) v.pause();
      if (Math.abs(v.currentTime - (v.duration - END_S)) > 0.1) v.currentTime = Math.max(0, v.duration - END_S);
      return;
    }
    if (!c.playing) {
      if (!v.paused) v.pause();
      v.playbackRate = 1;
      if (Math.abs(v.currentTime - t) > 0.01) v.currentTime = t;
      return;
    }
    if (v.seeking && !hard) return;
    const drift = v.currentTime - t;
    if (hard || Math.abs(drift) > SEEK_S || (v.paused && Math.abs(drift) > NUDGE_S)) {
      v.currentTime = t;
      v.playbackRate = 1;
    } else {
      v.playbackRate = Math.abs(drift) > NUDGE_S ? Math.min(1.3, Math.max(0.7, 1 - drift * 4)) : 1;
    }
    if (v.paused) v.play().catch(() => {});
  };
  const tick = () => {
    const c = clock;
    if (!c) return;
    const videos = members(c.scope);
    c.dur = span(videos) || c.dur;
    const t = now(c);
    if (c.playing && !c.starting && c.dur > 0 && t >= c.dur) start(c, 0);  // loop: all back to 0 together
    else videos.forEach(v => align(v, t, c, false));
    show(c, now(c));
  };
  const play = scope => {
    const c = own(scope);
    if (c.playing) return;
    c.dur = span(members(scope)) || c.dur;
    c.playing = true;
    start(c, c.dur > 0 && c.base >= c.dur - END_S ? 0 : c.base);
    clearInterval(c.timer);
    c.timer = setInterval(tick, TICK_MS);
    scope.classList.add('playing');
    show(c, c.base);
  };
  const pause = () => {
    const c = clock;
    if (!c || !c.playing) return;
    c.base = c.dur > 0 ? Math.min(now(c), c.dur) : now(c);
    c.playing = c.starting = false;
    c.run += 1;
    clearInterval(c.timer);
    members(c.scope).forEach(v => align(v, c.base, c, true));
    c.scope.classList.remove('playing');
    show(c, c.base);
  };
  const scrub = (scope, fraction) => {
    const c = own(scope);
    c.dur = span(members(scope)) || c.dur;
    const t = fraction * c.dur;
    if (c.playing) start(c, t);
    else { c.base = t; members(scope).forEach(v => align(v, t, c, true)); }
    show(c, t);
  };
  const joined = video => {
    if (clock && clock.scope.contains(video)) align(video, now(clock), clock, true);
  };
  const scopeOf = element => element.closest('tr') || element.closest('.tbl');
  // no sync controls where there is no video to play (a row or table of images)
  for (const ui of $$('.sync')) if (!scopeOf(ui).querySelector('a.t[href]:not([data-m])')) ui.hidden = true;

  document.addEventListener('click', event => {
    const button = event.target.closest('.play');
    if (button) {
      const scope = scopeOf(button);
      if (clock && clock.scope === scope && clock.playing) pause(); else play(scope);
    }
  });
  document.addEventListener('input', event => {
    if (event.target.classList && event.target.classList.contains('scrub')) {
      scrub(scopeOf(event.target), Number(event.target.value) / 1000);
    }
  });

  // ---- Details: a line on hover, everything (a player with controls, the file, the parameters) on click.
  const tip = document.getElementById('tip');
  const info = document.getElementById('info');
  const status = tile => tile.dataset.st || 'downloaded';
  const summary = tile => {
    const d = tile.dataset;
    const lines = [`#${d.i}` + (d.s ? ` · seed ${d.s}` : '') + ` · ${status(tile)}` + (d.c ? ` · ${d.c}` : '')];
    if (prompts.length > 1 && d.p !== '0') lines.push(label('prompt', d.p));
    if (d.e) lines.push(d.e.length > 160 ? d.e.slice(0, 159) + '…' : d.e);
    return lines.join('\n');
  };
  let hovered = null;
  window.addEventListener('scroll', () => { tip.hidden = true; hovered = null; }, {passive: true});
  document.addEventListener('mouseover', event => {
    const tile = event.target.closest ? event.target.closest('.t') : null;
    if (tile === hovered) return;
    hovered = tile;
    if (!tile) { tip.hidden = true; return; }
    tip.textContent = summary(tile);
    tip.hidden = false;
    const box = tile.getBoundingClientRect();
    tip.style.left = Math.max(4, Math.min(box.left, innerWidth - tip.offsetWidth - 4)) + 'px';
    const below = box.bottom + 4;
    tip.style.top = (below + tip.offsetHeight < innerHeight ? below : Math.max(4, box.top - tip.offsetHeight - 4)) + 'px';
  });

  const add = (parent, tag, text, className) => {
    const element = document.createElement(tag);
    if (text !== undefined) element.textContent = text;
    if (className) element.className = className;
    parent.append(element);
    return element;
  };
  const list = (parent, title, values) => {
    const names = Object.keys(values);
    if (!names.length) return;
    add(parent, 'h5', title);
    const dl = add(parent, 'dl');
    for (const name of names) { add(dl, 'dt', name); add(dl, 'dd', String(values[name])); }
  };
  let selected = null;
  const close = () => {
    info.hidden = true;
    const video = info.querySelector('video, audio');
    if (video) { video.pause(); video.removeAttribute('src'); video.load(); }
    info.replaceChildren();
    if (selected) selected.classList.remove('sel');
    selected = null;
  };
  const open = tile => {
    close();
    selected = tile;
    tile.classList.add('sel');
    const d = tile.dataset;
    const table = tile.closest('.tbl');
    const button = add(info, 'button', '✕', 'close play');
    button.type = 'button';
    button.setAttribute('aria-label', 'close');
    button.addEventListener('click', close);
    add(info, 'h4', `#${d.i} · ${status(tile)}`);
    const link = tile.getAttribute('href');
    if (link && d.m === 'image') {
      add(info, 'img').src = link;
    } else if (link && d.m === 'audio') {
      const audio = add(info, 'audio');
      audio.controls = true;
      audio.src = link;
    } else if (link) {
      const video = add(info, 'video');
      video.controls = true;
      video.muted = true;
      video.loop = true;
      video.playsInline = true;
      const image = tile.querySelector('img');
      if (image) video.poster = image.getAttribute('src');
      video.src = link;
    }
    if (link) {
      const p = add(info, 'p');
      const a = add(p, 'a', decodeURIComponent(link.split('/').pop()));
      a.href = link;
      if (d.b) add(p, 'span', ` · ${(Number(d.b) / 1e6).toFixed(1)} MB`);
      for (const more of (d.more || '').split(' ').filter(Boolean)) {
        const extra = add(add(info, 'p'), 'a', decodeURIComponent(more.split('/').pop()));
        extra.href = more;
      }
    }
    if (d.e) add(info, 'p', d.e, 'error');
    if (d.h) add(info, 'p', 'hint: ' + d.h, 'hint');
    add(info, 'p', prompts[Number(d.p) - 1] || '', 'prompt');
    const job = d.s ? {seed: d.s} : {};
    if (d.c) job.cost = d.c;
    if (d.ce) job['earlier attempts'] = d.ce;
    if (d.j) job['job id'] = d.j;
    if (d.k) job['key (prefix)'] = d.k;
    if (d.tr) job['trace id'] = d.tr;
    list(info, 'job', job);
    const cell = tile.closest('td');
    const head = cell && table ? table.querySelector('thead tr') : null;
    const column = head && cell.cellIndex < head.children.length ? head.children[cell.cellIndex] : null;
    const row = tile.closest('tr');
    list(info, 'varies here', {...json(table && table.dataset.gx), ...json(row && row.dataset.x),
                               ...json(column && column.dataset.x), ...json(d.x)});
    list(info, 'fixed in this table', json(table && table.dataset.fx));
    info.hidden = false;
  };
  document.addEventListener('click', event => {
    const tile = event.target.closest('.t');
    if (!tile || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    open(tile);
  });
  document.addEventListener('keydown', event => {
    const typing = /^(INPUT|SELECT|TEXTAREA|BUTTON|VIDEO)$/.test(event.target.tagName || '');
    if (event.key === 'Escape' && !info.hidden) close();
    else if (event.key === 'Enter' && event.target.classList && event.target.classList.contains('t')) {
      event.preventDefault();
      open(event.target);
    } else if (event.key === ' ' && !typing) {
      // the playing (or last played) row or table; else the first table whose rows are on screen
      const top = bar ? bar.getBoundingClientRect().bottom : 0;
      const scope = clock ? clock.scope : tables.find(t => !t.hidden && t.getBoundingClientRect().bottom > top + 80);
      if (!scope) return;
      event.preventDefault();
      if (clock && clock.scope === scope && clock.playing) pause(); else play(scope);
    }
  });

  apply();
  // A link to a table (#t3) is followed again once the filters have hidden what they hide.
  const target = location.hash.length > 1 && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target && !target.closest('[hidden]')) target.scrollIntoView();
  performance.mark('ltx-sheet-ready');
})();
