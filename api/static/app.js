// The statusengine status page. Every value from the API reaches the DOM
// through textContent or an attribute, never through innerHTML: report
// fields are whatever a client put in its beacon.
(function () {
  'use strict';

  var REFRESH_MS = 30000;
  var TOP_SERIES = 8;
  var TOP_ROWS = 10;
  var RANGES = { '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400, '90d': 90 * 86400, '365d': 365 * 86400 };
  var PALETTE = ['#1f6feb', '#2da44e', '#e8590c', '#8250df', '#d6336c', '#0ca678',
    '#f59f00', '#1098ad', '#6e7781', '#a0522d', '#94a3b8'];
  var SVGNS = 'http://www.w3.org/2000/svg';

  var $ = function (id) { return document.getElementById(id); };
  var nf = new Intl.NumberFormat();
  var pf = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  var state = { range: '7d', from: 0, to: 0, split: 'modsec', zone: '' };
  // zones: what /api/v1/zones lists (ModSecurity's zones as zone ""); the
  // page shows one of them, picked by the selector when there are several.
  var zones = [{ zone: '', schema: 'modsecurity', title: 'ModSecurity status', fields: [], version: 'modsec', platform: 'platform' }];
  var shownZone = null;
  var MODSEC_SPLITS = [['modsec', 'ModSecurity version'], ['platform', 'platform'], ['country', 'country']];
  var charts = {};
  var world = null; // {paths: {alpha2: SVGPathElement}, projection}
  var inflight = null;
  var selected = null;
  var lastMap = null;

  // ---- helpers -----------------------------------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function shown(v) { return v === '' || v === null || v === undefined ? '(none)' : String(v); }

  function getJSON(url, signal) {
    return fetch(url, { signal: signal, headers: { Accept: 'application/json' } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(url.split('?')[0] + ': ' + (body.error || r.status + ' ' + r.statusText));
        return body;
      });
    });
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function toLocalInput(sec) {
    var d = new Date(sec * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  function fromLocalInput(s) { var t = new Date(s).getTime(); return isNaN(t) ? NaN : Math.floor(t / 1000); }

  // seriesFor picks what the chart over time plots: installations are
  // counted per day at the finest, so the shortest ranges plot reports per
  // hour, and say so.
  function seriesFor(span) {
    if (span <= 2 * 86400) return { step: 'hour', count: 'reports' };
    if (span <= 120 * 86400) return { step: 'day', count: 'installations' };
    return { step: 'week', count: 'installations' };
  }

  function churnStepFor(span) { return span <= 120 * 86400 ? 'day' : 'week'; }

  function fmtDay(sec) {
    return new Date(sec * 1000).toLocaleDateString(undefined, { timeZone: 'UTC', year: 'numeric', month: 'short', day: 'numeric' });
  }

  function fmtBucket(t, step) {
    var d = new Date(t * 1000);
    if (step === 'hour') {
      return d.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
    }
    return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: step === 'week' ? '2-digit' : undefined });
  }

  function fmtRange(from, to) {
    // Times of day only matter for short ranges.
    var o = to - from < 3 * 86400
      ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }
      : { year: 'numeric', month: 'short', day: 'numeric' };
    return new Date(from * 1000).toLocaleString(undefined, o) + ' – ' + new Date(to * 1000).toLocaleString(undefined, o);
  }

  // ---- time range and URL --------------------------------------------------

  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    var r = p.get('range');
    if (r === 'custom') {
      var f = parseInt(p.get('from'), 10), t = parseInt(p.get('to'), 10);
      if (f >= 0 && t > f) { state.range = 'custom'; state.from = f; state.to = t; }
    } else if (r === '1y') {
      state.range = '365d'; // the name of the 365-day range in older links
    } else if (r && RANGES[r]) {
      state.range = r;
    }
    state.zone = p.get('zone') || '';
    var s = p.get('by');
    if (s) state.split = s;
  }

  // current is the zone entry the page shows.
  function current() {
    for (var i = 0; i < zones.length; i++) if (zones[i].zone === state.zone) return zones[i];
    return zones[0];
  }

  function splits(z) {
    if (z.schema !== 'custom') return MODSEC_SPLITS;
    return z.fields.map(function (f) { return [f, f]; }).concat([['country', 'country']]);
  }

  function zoneQ() { return state.zone ? '&zone=' + encodeURIComponent(state.zone) : ''; }

  // applyZone shows what the zone's schema has: its title, its fields'
  // panels and splits; ModSecurity's panels only for ModSecurity's zones.
  function applyZone() {
    var z = current();
    state.zone = z.zone;
    var ok = splits(z).some(function (s) { return s[0] === state.split; });
    if (!ok) state.split = z.schema === 'custom' ? (z.version || 'country') : 'modsec';
    if (shownZone === z) return;
    shownZone = z;
    var custom = z.schema === 'custom';
    document.title = z.title;
    $('page-title').textContent = z.title;
    $('page-sub').textContent = custom ? 'Installations reporting to ' + z.zone.replace(/\.$/, '') : 'Installations reporting through SecStatusEngine';
    $('fig-latest-title').textContent = custom ? 'Latest ' + (z.version || 'version') : 'Latest ModSecurity';
    $('adoption-title').textContent = custom ? 'Adoption of ' + (z.version || 'version') + ' values' : 'Adoption of ModSecurity versions';
    $('modsec-breakdowns').hidden = custom;
    $('combos-card').hidden = custom;
    // Exposure counts ModSecurity's zones: the advisories name its fields.
    $('exposure').hidden = custom;
    $('exposure-list').hidden = custom;
    var fields = $('fields');
    fields.textContent = '';
    fields.hidden = !custom;
    if (custom) {
      z.fields.forEach(function (f) {
        var card = el('div', 'card');
        card.appendChild(el('h2', undefined, f));
        var ol = el('ol', 'bars');
        ol.dataset.breakdown = f;
        card.appendChild(ol);
        fields.appendChild(card);
      });
    }
    var sel = $('split');
    sel.textContent = '';
    splits(z).forEach(function (s) {
      var o = el('option', undefined, s[1]);
      o.value = s[0];
      sel.appendChild(o);
    });
  }

  function writeHash() {
    var p = new URLSearchParams();
    p.set('range', state.range);
    if (state.range === 'custom') { p.set('from', state.from); p.set('to', state.to); }
    if (state.zone) p.set('zone', state.zone);
    if (state.split !== (current().schema === 'custom' ? current().version : 'modsec')) p.set('by', state.split);
    history.replaceState(null, '', '#' + p.toString());
  }

  function window_() {
    if (state.range === 'custom') return { from: state.from, to: state.to };
    var to = Math.floor(Date.now() / 1000);
    return { from: to - RANGES[state.range], to: to };
  }

  function syncControls() {
    var bs = document.querySelectorAll('.ranges button');
    for (var i = 0; i < bs.length; i++) {
      bs[i].setAttribute('aria-pressed', String(bs[i].dataset.range === state.range));
    }
    $('custom').hidden = state.range !== 'custom';
    applyZone();
    $('split').value = state.split;
    $('zone').value = state.zone;
  }

  // ---- loading -------------------------------------------------------------

  function refresh() {
    if (inflight) inflight.abort();
    var ctl = new AbortController();
    inflight = ctl;
    var w = window_();
    var span = w.to - w.from;
    var q = 'from=' + w.from + '&to=' + w.to + zoneQ();
    var series = seriesFor(span);
    var churnStep = churnStepFor(span);
    return Promise.all([
      getJSON('/api/v1/summary?' + q, ctl.signal),
      getJSON('/api/v1/timeseries?' + q + '&step=' + series.step + '&count=' + series.count + '&by=' + state.split, ctl.signal),
      getJSON('/api/v1/map?' + q, ctl.signal),
      getJSON('/api/v1/adoption?' + q, ctl.signal),
      getJSON('/api/v1/churn?' + q + '&step=' + churnStep, ctl.signal),
      loadWorld(),
      current().schema === 'custom' ? Promise.resolve(null) : getJSON('/api/v1/exposure?' + q + '&step=' + churnStep, ctl.signal)
    ]).then(function (res) {
      if (inflight !== ctl) return;
      inflight = null;
      render(w, res[0], res[1], res[2], res[3], res[4]);
      renderExposure(res[6]);
      $('error').hidden = true;
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      var fig = $('figures');
      fig.dataset.from = w.from;
      fig.dataset.to = w.to;
      document.body.dataset.renders = String((parseInt(document.body.dataset.renders, 10) || 0) + 1);
      document.body.dataset.state = 'ready';
    }).catch(function (err) {
      if (err.name === 'AbortError') return;
      if (inflight === ctl) inflight = null;
      $('error').textContent = 'Could not load the data: ' + err.message;
      $('error').hidden = false;
      $('updated').textContent = 'update failed ' + new Date().toLocaleTimeString();
      document.body.dataset.state = 'error';
    });
  }

  function render(w, sum, ts, map, adoption, churn) {
    renderFigures(w, sum);
    renderMap(map);
    renderAdoption(adoption);
    renderChurn(churn);
    renderFloor(sum.public_min);
    renderCountries(sum.breakdowns && sum.breakdowns.country || []);
    renderTime(ts);
    renderPlatform(sum.breakdowns && sum.breakdowns[current().platform || 'platform'] || []);
    var lists = document.querySelectorAll('[data-breakdown]');
    for (var i = 0; i < lists.length; i++) {
      renderBars(lists[i], (sum.breakdowns || {})[lists[i].dataset.breakdown] || [], function (r) {
        return r.other ? otherLabel(r, 'values') : shown(r.value);
      });
    }
    renderCombos(sum.top_combinations || [], sum.combinations_other);
  }

  // ---- figures -------------------------------------------------------------

  function renderFigures(w, s) {
    $('fig-reports').textContent = nf.format(s.reports || 0);
    $('fig-installations').textContent = nf.format(s.installations || 0);
    $('fig-distinct').textContent = nf.format(s.distinct_ids || 0);
    var latest = s.zone ? s.latest_version : s.latest_modsec;
    $('fig-latest').textContent = latest ? latest : '–';
    var f = s.public_min || {};
    $('fig-latest-note').textContent = f.installations > 1 || f.networks > 1
      ? 'newest version run by ' + nf.format(f.installations) + '+ installations from ' + nf.format(f.networks) + '+ networks'
      : 'newest version reported';
    var share = s.installations ? (s.latest_share || 0) : 0;
    $('fig-adoption').textContent = s.installations ? pf.format(share * 100) + ' %' : '–';
    $('fig-adoption-bar').style.width = (Math.max(0, Math.min(1, share)) * 100) + '%';
    $('fig-on-latest').textContent = nf.format(s.installations_on_latest || 0);
    $('fig-of-installations').textContent = nf.format(s.installations || 0);
    $('fig-range').textContent = fmtRange(w.from, w.to);
  }

  // ---- bar lists and table ------------------------------------------------

  // otherLabel names the row that sums what a list leaves out (values
  // under the public floor, or past the API's top values).
  function otherLabel(r, what) {
    return 'other (' + nf.format(r.values || 0) + ' ' + what + ')';
  }

  function renderBars(list, rows, label, onClick) {
    list.textContent = '';
    if (!rows.length) { list.appendChild(el('li', 'empty', 'No reports in this range')); return; }
    var named = rows.filter(function (r) { return !r.other; });
    var other = rows.filter(function (r) { return r.other; })[0];
    var top = named.slice().sort(function (a, b) { return (b.installations || 0) - (a.installations || 0); }).slice(0, TOP_ROWS);
    var total = rows.reduce(function (n, r) { return n + (r.installations || 0); }, 0) || 1;
    if (other) top.push(other);
    top.forEach(function (r) {
      if (r === other && named.length > TOP_ROWS) list.appendChild(el('li', 'empty', (named.length - TOP_ROWS) + ' more'));
      var li = el('li', r.other ? 'other' : undefined);
      var fill = el('span', 'fill');
      fill.style.width = (100 * (r.installations || 0) / total).toFixed(1) + '%';
      var name = el('span', 'label', label(r));
      name.title = label(r);
      li.appendChild(fill);
      li.appendChild(name);
      li.appendChild(el('span', 'n', nf.format(r.installations || 0) + ' · ' + pf.format(100 * (r.installations || 0) / total) + '%'));
      if (onClick && !r.other) li.addEventListener('click', function () { onClick(r); });
      list.appendChild(li);
    });
    if (!other && named.length > TOP_ROWS) list.appendChild(el('li', 'empty', (named.length - TOP_ROWS) + ' more'));
  }

  function renderCountries(rows) {
    renderBars($('countries'), rows, function (r) {
      if (r.other) return otherLabel(r, 'countries');
      if (!r.value) return 'Unknown'; // reports no country was found for
      return r.name ? r.name + ' (' + r.value + ')' : r.value;
    }, function (r) { if (r.value) select(r.value); });
  }

  function renderCombos(rows, other) {
    var body = document.querySelector('#combos tbody');
    body.textContent = '';
    other = other || {};
    rows.forEach(function (r) {
      var tr = el('tr');
      ['modsec', 'server', 'apr', 'pcre', 'lua', 'libxml'].forEach(function (k) {
        tr.appendChild(el('td', r[k] ? '' : 'none', shown(r[k])));
      });
      tr.appendChild(el('td', 'num', nf.format(r.installations || 0)));
      body.appendChild(tr);
    });
    if (!rows.length && !other.values) {
      var tr = el('tr'), td = el('td', 'none', 'No reports in this range');
      td.colSpan = 7;
      tr.appendChild(td);
      body.appendChild(tr);
    } else if (other.values) {
      // What the list leaves out: past the top 20, or under the public floor.
      var ot = el('tr', 'other'), label = el('td', 'none', otherLabel(other, 'combinations'));
      label.colSpan = 6;
      ot.appendChild(label);
      ot.appendChild(el('td', 'num', nf.format(other.installations || 0)));
      body.appendChild(ot);
    }
  }

  // ---- map -----------------------------------------------------------------

  var worldPromise = null;
  function loadWorld() {
    if (worldPromise) return worldPromise;
    worldPromise = Promise.all([
      getJSON('/static/vendor/world-atlas/countries-110m.json'),
      getJSON('/static/vendor/i18n-iso-countries/codes.json')
    ]).then(function (res) {
      var numeric = {};
      res[1].forEach(function (c) { numeric[c[2]] = c[0]; });
      var projection = d3.geoEqualEarth().fitExtent([[4, 4], [956, 496]], { type: 'Sphere' });
      var path = d3.geoPath(projection);
      var sphere = document.createElementNS(SVGNS, 'path');
      sphere.setAttribute('d', path({ type: 'Sphere' }));
      $('map-sphere').appendChild(sphere);
      var g = $('map-countries');
      var paths = {};
      topojson.feature(res[0], res[0].objects.countries).features.forEach(function (f) {
        var p = document.createElementNS(SVGNS, 'path');
        p.setAttribute('d', path(f));
        var code = numeric[f.id];
        var name = f.properties && f.properties.name || '';
        p.dataset.name = name;
        var title = document.createElementNS(SVGNS, 'title');
        title.textContent = name;
        p.appendChild(title);
        if (code) {
          p.dataset.code = code;
          paths[code] = p;
          p.addEventListener('click', function () { select(code); });
          p.addEventListener('mouseenter', function () { showInfo(code); });
          p.addEventListener('mouseleave', function () { showInfo(selected); });
        }
        g.appendChild(p);
      });
      world = { paths: paths, projection: projection };
      return world;
    });
    worldPromise.catch(function () { worldPromise = null; });
    return worldPromise;
  }

  function hexRGB(s, fallback) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(s.trim());
    return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : fallback;
  }

  // ramp interpolates the legend's two colours (CSS --ramp-lo and --ramp-hi,
  // which the dark theme turns around) in RGB; t in [0,1].
  function ramp(t) {
    var cs = getComputedStyle(document.documentElement);
    var lo = hexRGB(cs.getPropertyValue('--ramp-lo'), [0xcf, 0xe2, 0xff]);
    var hi = hexRGB(cs.getPropertyValue('--ramp-hi'), [0x08, 0x30, 0x6b]);
    var c = lo.map(function (v, i) { return Math.round(v + (hi[i] - v) * t); });
    return 'rgb(' + c.join(',') + ')';
  }

  function renderMap(m) {
    lastMap = m;
    var rows = m.countries || [];
    var max = rows.reduce(function (n, r) { return Math.max(n, r.installations || 0); }, 0);
    var byCode = {};
    rows.forEach(function (r) { byCode[r.code] = r; });
    Object.keys(world.paths).forEach(function (code) {
      var p = world.paths[code], r = byCode[code];
      var title = p.firstChild;
      if (r && r.installations > 0) {
        // Square-root scale: a few big countries would wash out a linear one.
        p.style.fill = ramp(0.12 + 0.88 * Math.sqrt(r.installations / max));
        p.dataset.installations = r.installations;
        p.classList.add('has-data');
        title.textContent = (r.name || p.dataset.name) + ': ' + nf.format(r.installations) + ' installations';
      } else {
        p.style.fill = '';
        delete p.dataset.installations;
        p.classList.remove('has-data');
        title.textContent = p.dataset.name;
      }
    });
    // With nothing located the ramp would read "0 to 0": say so instead.
    $('legend').hidden = max === 0;
    $('legend-empty').hidden = max !== 0;
    $('legend-min').textContent = '1';
    $('legend-max').textContent = nf.format(max);
    var other = m.other || {};
    $('map-note').hidden = !other.values;
    $('map-note').textContent = other.values
      ? nf.format(other.values) + (other.values === 1 ? ' country' : ' countries') + ' with too few installations to show'
      : '';

    var g = $('map-points');
    g.textContent = '';
    if (m.city_database) {
      var pts = m.points || [];
      var pmax = pts.reduce(function (n, p) { return Math.max(n, p.installations || 0); }, 1);
      pts.forEach(function (pt) {
        var xy = world.projection([pt.lon, pt.lat]);
        if (!xy) return;
        var c = document.createElementNS(SVGNS, 'circle');
        c.setAttribute('cx', xy[0].toFixed(1));
        c.setAttribute('cy', xy[1].toFixed(1));
        c.setAttribute('r', (1.5 + 8 * Math.sqrt(pt.installations / pmax)).toFixed(1));
        c.dataset.installations = pt.installations;
        var t = document.createElementNS(SVGNS, 'title');
        t.textContent = nf.format(pt.installations) + ' installations near ' + pt.lat + ', ' + pt.lon;
        c.appendChild(t);
        g.appendChild(c);
      });
    }
    if (selected) select(selected);
  }

  function select(code) {
    selected = code;
    var paths = world ? world.paths : {};
    Object.keys(paths).forEach(function (c) { paths[c].classList.toggle('selected', c === code); });
    showInfo(code);
  }

  // showInfo puts one country's numbers under the map: titles alone do not
  // show on touch screens.
  function showInfo(code) {
    if (!code) { $('map-info').textContent = 'Tap or hover over a country.'; return; }
    var paths = world ? world.paths : {};
    var r = (lastMap && lastMap.countries || []).filter(function (x) { return x.code === code; })[0];
    var name = r && r.name || (paths[code] && paths[code].dataset.name) || code;
    $('map-info').textContent = r
      ? name + ': ' + nf.format(r.installations) + ' installations, ' + nf.format(r.reports) + ' reports'
      : name + ': no reports in this range';
  }

  // ---- charts --------------------------------------------------------------

  function themeColors() {
    var cs = getComputedStyle(document.documentElement);
    return { fg: cs.getPropertyValue('--muted').trim(), line: cs.getPropertyValue('--line').trim() };
  }

  function renderTime(ts) {
    var buckets = ts.buckets || [];
    var totals = {};
    buckets.forEach(function (b) {
      Object.keys(b.series || {}).forEach(function (k) { totals[k] = (totals[k] || 0) + b.series[k]; });
    });
    // The API's own "other" joins what the named series leave, below.
    var keys = Object.keys(totals).filter(function (k) { return k !== 'other'; })
      .sort(function (a, b) { return totals[b] - totals[a]; });
    var top = keys.slice(0, TOP_SERIES);
    var datasets = top.map(function (k, i) {
      return {
        label: shown(k),
        data: buckets.map(function (b) { return (b.series || {})[k] || 0; }),
        backgroundColor: PALETTE[i % PALETTE.length] + 'b3',
        borderColor: PALETTE[i % PALETTE.length],
        borderWidth: 1, pointRadius: 0, fill: true, tension: 0.25
      };
    });
    // Whatever the named series leave of a bucket's total: smaller series,
    // or installations the split could not place.
    var other = buckets.map(function (b) {
      var n = b.total || 0;
      top.forEach(function (k) { n -= (b.series || {})[k] || 0; });
      return Math.max(0, n);
    });
    if (!keys.length || other.some(function (n) { return n > 0; })) {
      var grey = PALETTE[PALETTE.length - 1];
      datasets.push({
        label: keys.length ? 'other' : 'total', data: other,
        backgroundColor: grey + 'b3', borderColor: grey,
        borderWidth: 1, pointRadius: 0, fill: true, tension: 0.25
      });
    }
    var labels = buckets.map(function (b) { return fmtBucket(b.t, ts.step); });
    stepChart('time', 'line', labels, datasets, {}, { stacked: true, beginAtZero: true, ticks: { precision: 0 } });
    $('chart-time').dataset.step = ts.step || '';
    $('chart-time').dataset.by = ts.by || '';
    $('chart-time').dataset.count = ts.count || '';
    $('time-title').textContent = (ts.count === 'installations' ? 'Installations' : 'Reports') + ' per ' + (ts.step || 'day');
  }

  // ---- adoption and churn -------------------------------------------------

  function renderAdoption(a) {
    var levels = a.levels || {};
    var dds = document.querySelectorAll('#levels dd');
    for (var i = 0; i < dds.length; i++) {
      dds[i].textContent = levels[dds[i].dataset.level] || '–';
    }
    var body = document.querySelector('#adoption tbody');
    body.textContent = '';
    var rows = (a.versions || []).slice();
    if (a.other && a.other.values) rows.push({ other: a.other });
    if (!rows.length) {
      var tr = el('tr'), td = el('td', 'none', 'No reports in this range');
      td.colSpan = 6;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    var days = function (n) { return n === null || n === undefined ? '–' : nf.format(n); };
    rows.forEach(function (v) {
      var tr = el('tr');
      if (v.other) {
        tr.appendChild(el('td', 'none', otherLabel(v.other, 'versions')));
        tr.appendChild(el('td', 'none', '–'));
        tr.appendChild(el('td', 'num', nf.format(v.other.installations || 0)));
        tr.appendChild(el('td', 'num', pf.format(100 * (v.other.share || 0)) + ' %'));
        tr.appendChild(el('td', 'num', '–'));
        tr.appendChild(el('td', 'num', '–'));
      } else {
        tr.appendChild(el('td', '', v.version));
        tr.appendChild(el('td', '', v.first_seen === null ? '–' : fmtDay(v.first_seen)));
        tr.appendChild(el('td', 'num', nf.format(v.installations || 0)));
        tr.appendChild(el('td', 'num', pf.format(100 * (v.share || 0)) + ' %'));
        tr.appendChild(el('td', 'num', days(v.days_to_25)));
        tr.appendChild(el('td', 'num', days(v.days_to_50)));
      }
      body.appendChild(tr);
    });
  }

  function renderChurn(c) {
    var steps = c.steps || [];
    var labels = steps.map(function (s) { return fmtBucket(s.start, c.step); });
    var series = [
      { label: 'new', key: 'new', sign: 1, color: '#2da44e' },
      { label: 'returning', key: 'returning', sign: 1, color: '#1f6feb' },
      { label: 'gone', key: 'gone', sign: -1, color: '#d6336c' }
    ];
    var datasets = series.map(function (d) {
      return {
        label: d.label,
        data: steps.map(function (s) { return d.sign * (s[d.key] || 0); }),
        backgroundColor: d.color + 'b3', borderColor: d.color, borderWidth: 1
      };
    });
    stepChart('churn', 'bar', labels, datasets, { stacked: true }, { stacked: true, ticks: { precision: 0 } });
    $('chart-churn').dataset.step = c.step || '';
    $('churn-title').textContent = 'Installations gained and lost per ' + (c.step || 'day');
  }

  // ---- exposure ------------------------------------------------------------

  var SEV_ORDER = ['critical', 'high', 'medium', 'low', 'unknown', 'other'];

  // renderExposure shows the share of installations on a version that
  // upstream lists as affected, the advisories with the most installations
  // and the exposed share per step (per field: ModSecurity, the server).
  function renderExposure(e) {
    if (!e) return; // a zone of a custom schema: no exposure
    var total = e.installations || 0;
    var ex = e.exposed || {};
    $('fig-exposed').textContent = total ? pf.format(100 * (ex.share || 0)) + ' %' : '–';
    $('fig-exposed-bar').style.width = (Math.max(0, Math.min(1, ex.share || 0)) * 100) + '%';
    $('fig-exposed-n').textContent = nf.format(ex.installations || 0);
    $('fig-exposed-of').textContent = nf.format(total);
    if (e.caveat) $('exposure-caveat').textContent = e.caveat;
    var un = e.unknown || {};
    $('exposure-unknown').textContent = un.installations
      ? nf.format(un.installations) + ' (' + pf.format(100 * (un.share || 0)) + ' %) report a version that does not parse: unknown, not counted as exposed'
      : '';
    var sev = $('exposure-severity');
    sev.textContent = '';
    (e.by_severity || []).slice().sort(function (a, b) {
      return SEV_ORDER.indexOf(a.severity) - SEV_ORDER.indexOf(b.severity);
    }).forEach(function (g) {
      var li = el('li', 'sev-' + g.severity, (g.other ? 'other levels' : g.severity) + ': ' + nf.format(g.installations || 0) +
        ' (' + pf.format(100 * (g.share || 0)) + ' %)');
      li.dataset.severity = g.severity;
      sev.appendChild(li);
    });
    var body = document.querySelector('#exposure-advisories tbody');
    body.textContent = '';
    var rows = e.advisories || [];
    if (!rows.length) {
      var tr = el('tr'), td = el('td', 'none', total ? 'No installation runs a version a known advisory lists' : 'No reports in this range');
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    rows.forEach(function (a) {
      var tr = el('tr');
      tr.dataset.advisory = a.id;
      var td = el('td', 'adv');
      var ref = (a.references || [])[0];
      var name = ref && /^https?:\/\//.test(ref) ? el('a', '', a.id) : el('span', '', a.id);
      if (name.tagName === 'A') { name.href = ref; name.rel = 'noopener'; }
      td.appendChild(name);
      if (a.summary) td.appendChild(el('div', 'muted small', a.summary));
      if (a.note) td.appendChild(el('div', 'muted small', 'Note: ' + a.note));
      tr.appendChild(td);
      tr.appendChild(el('td', 'sev-' + a.severity, a.severity + (a.cvss ? ' ' + a.cvss.toFixed(1) : '')));
      var vs = (a.versions || []).map(function (v) { return v.value; });
      if (a.other_versions) vs.push('+' + nf.format(a.other_versions) + ' more');
      tr.appendChild(el('td', 'adv-versions', vs.join(', ') || '–'));
      tr.appendChild(el('td', 'num', nf.format(a.installations || 0)));
      tr.appendChild(el('td', 'num', pf.format(100 * (a.share || 0)) + ' %'));
      body.appendChild(tr);
    });
    var o = e.other || {};
    $('exposure-other').textContent = (o.advisories ? nf.format(o.advisories) + ' more advisories are counted, not listed (under the public floor or past the top). ' : '') +
      nf.format((e.advisory_set || {}).records || 0) + ' advisories checked' + (o.quiet ? ', ' + nf.format(o.quiet) + ' of them affect no installation in this range.' : '.');
    var steps = e.trend || [];
    var labels = steps.map(function (s) { return fmtBucket(s.t, e.step); });
    var names = { modsec: 'ModSecurity', server: 'server', pcre: 'PCRE', libxml: 'libxml2', lua: 'Lua', apr: 'APR' };
    var colors = ['#d6336c', '#e8590c', '#1f6feb', '#2da44e', '#8250df', '#6e7781'];
    // First the share exposed to at least one advisory (each installation
    // once), then each field's.
    var datasets = [{
      label: 'any advisory',
      data: steps.map(function (s) { return s.installations ? 100 * (s.exposed || 0) / s.installations : 0; }),
      borderColor: '#24292f', backgroundColor: '#24292f', borderWidth: 3, tension: 0.2, pointRadius: 0
    }].concat(((e.advisory_set || {}).fields || []).map(function (f, i) {
      return {
        label: names[f] || f,
        data: steps.map(function (s) { return s.installations ? 100 * ((s.fields || {})[f] || 0) / s.installations : 0; }),
        borderColor: colors[i % colors.length], backgroundColor: colors[i % colors.length], tension: 0.2, pointRadius: 0
      };
    }));
    stepChart('exposure', 'line', labels, datasets, {}, { min: 0, max: 100, ticks: { callback: function (v) { return v + ' %'; } } });
    $('chart-exposure').dataset.step = e.step || '';
    $('chart-exposure').dataset.steps = String(steps.length);
    $('exposure-trend-title').textContent = 'Share on an affected version per ' + (e.step || 'day');
    $('exposure').dataset.exposed = String(ex.installations || 0);
  }

  // stepChart draws the chart of a series over steps in canvas
  // 'chart-' + name, or gives the one drawn its new labels and datasets.
  // x and y are the scales' options beyond the theme's colours (a switch
  // between light and dark recolours them, see init).
  function stepChart(name, type, labels, datasets, x, y) {
    var ch = charts[name];
    if (ch) {
      ch.data.labels = labels;
      ch.data.datasets = datasets;
      ch.update();
      return;
    }
    var c = themeColors();
    var xs = Object.assign({}, x, { grid: { display: false } });
    xs.ticks = Object.assign({ color: c.fg, maxRotation: 0, autoSkipPadding: 12 }, x.ticks);
    var ys = Object.assign({}, y, { grid: { color: c.line } });
    ys.ticks = Object.assign({ color: c.fg }, y.ticks);
    charts[name] = new Chart($('chart-' + name), {
      type: type,
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: { x: xs, y: ys },
        plugins: { legend: { position: 'bottom', labels: { color: c.fg, boxWidth: 12 } } }
      }
    });
  }

  // renderFloor says in the footer what the public floor holds back.
  function renderFloor(f) {
    f = f || {};
    $('floor-note').textContent = f.installations > 1 || f.networks > 1
      ? 'Versions, platforms and places with fewer than ' + nf.format(f.installations) + ' installations or ' +
        nf.format(f.networks) + ' source networks are counted under "other".'
      : '';
  }

  function renderPlatform(rows) {
    var sorted = rows.slice().sort(function (a, b) { return (b.installations || 0) - (a.installations || 0); });
    var labels = sorted.map(function (r) { return r.other ? 'other' : shown(r.value); });
    var data = sorted.map(function (r) { return r.installations || 0; });
    var colors = sorted.map(function (r, i) { return PALETTE[i % PALETTE.length]; });
    $('platform-empty').hidden = rows.length > 0;
    var c = themeColors();
    if (!charts.platform) {
      charts.platform = new Chart($('chart-platform'), {
        type: 'doughnut',
        data: { labels: labels, datasets: [{ data: data, backgroundColor: colors, borderWidth: 1 }] },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, cutout: '55%',
          plugins: { legend: { position: 'bottom', labels: { color: c.fg, boxWidth: 12 } } }
        }
      });
    } else {
      charts.platform.data.labels = labels;
      charts.platform.data.datasets[0].data = data;
      charts.platform.data.datasets[0].backgroundColor = colors;
      charts.platform.update();
    }
  }

  // ---- wiring --------------------------------------------------------------

  // start reads the zones, then shows the page; without the list (an
  // older server) it shows ModSecurity's zones.
  function start() {
    getJSON('/api/v1/zones').then(function (z) {
      if (z.zones && z.zones.length) zones = z.zones;
    }).catch(function () {}).then(begin);
  }

  function begin() {
    var pick = $('zone');
    zones.forEach(function (z) {
      var o = el('option', undefined, z.title);
      o.value = z.zone;
      pick.appendChild(o);
    });
    $('zone-pick').hidden = zones.length < 2;
    pick.addEventListener('change', function () {
      state.zone = pick.value;
      syncControls(); writeHash(); refresh();
    });
    readHash();
    if (state.range === 'custom') {
      $('custom-from').value = toLocalInput(state.from);
      $('custom-to').value = toLocalInput(state.to);
    }
    syncControls();

    document.querySelector('.ranges').addEventListener('click', function (e) {
      var r = e.target.dataset && e.target.dataset.range;
      if (!r) return;
      if (r === 'custom') {
        var w = window_();
        $('custom-from').value = toLocalInput(w.from);
        $('custom-to').value = toLocalInput(w.to);
        state.range = 'custom'; state.from = w.from; state.to = w.to;
        syncControls();
        return; // wait for Apply
      }
      state.range = r;
      syncControls(); writeHash(); refresh();
    });
    $('custom').addEventListener('submit', function (e) {
      e.preventDefault();
      var f = fromLocalInput($('custom-from').value), t = fromLocalInput($('custom-to').value);
      if (!(f >= 0) || !(t > f)) {
        $('error').textContent = 'The custom range needs a start before its end.';
        $('error').hidden = false;
        return;
      }
      state.range = 'custom'; state.from = f; state.to = t;
      syncControls(); writeHash(); refresh();
    });
    $('split').addEventListener('change', function () {
      state.split = $('split').value;
      writeHash(); refresh();
    });
    // Follow a switch between light and dark while the page is open.
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', function () {
      var c = themeColors();
      ['time', 'churn', 'exposure'].forEach(function (name) {
        var ch = charts[name];
        if (!ch) return;
        var o = ch.options;
        o.scales.x.ticks.color = o.scales.y.ticks.color = o.plugins.legend.labels.color = c.fg;
        o.scales.y.grid.color = c.line;
        ch.update();
      });
      if (charts.platform) {
        charts.platform.options.plugins.legend.labels.color = c.fg;
        charts.platform.update();
      }
      if (world && lastMap) renderMap(lastMap);
    });
    window.addEventListener('hashchange', function () { readHash(); syncControls(); refresh(); });
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && $('autorefresh').checked) refresh();
    });
    setInterval(function () {
      if ($('autorefresh').checked && !document.hidden) refresh();
    }, REFRESH_MS);
    refresh();
  }

  start();
})();
