-- Facegate central store: the RPC functions doors (and the provisioning tool) call.
--
-- pull_changes, push_events and heartbeat run as the caller (security invoker), so Row Level
-- Security applies to them exactly as to a direct table read. push_people must create a person,
-- its site access and its faces together and enforce "the central copy wins", so it runs as the
-- owner with its own explicit checks: the person must belong to the calling door's site.

create function public.pull_changes(after bigint default 0, lim integer default 500)
returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
    site uuid := public.facegate_my_site();
    result jsonb;
begin
    if site is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    lim := least(greatest(coalesce(lim, 500), 1), 5000);
    after := coalesce(after, 0);
    with changes as (
        (select 'schedule' as kind, s.change_no,
                jsonb_build_object('id', s.id, 'name', s.name, 'windows', s.windows,
                                   'deleted', s.deleted) as row
           from public.schedules s
          where s.site_id = site and s.change_no > after
          order by s.change_no limit lim)
        union all
        (select 'person', p.change_no,
                jsonb_build_object('id', p.id, 'name', p.name, 'external_id', p.external_id,
                                   'active', p.active, 'valid_from', p.valid_from,
                                   'valid_until', p.valid_until, 'schedule_id', p.schedule_id,
                                   'notes', p.notes,
                                   'deleted', p.deleted or ps.deleted)
           from public.persons p
           join public.person_sites ps on ps.person_id = p.id and ps.site_id = site
          where p.change_no > after
          order by p.change_no limit lim)
        union all
        (select 'face', f.change_no,
                jsonb_build_object('id', f.id, 'person_id', f.person_id,
                                   'embedding', f.embedding, 'model', f.model,
                                   'quality', f.quality,
                                   'deleted', f.deleted or p.deleted or ps.deleted)
           from public.faces f
           join public.persons p on p.id = f.person_id
           join public.person_sites ps on ps.person_id = f.person_id and ps.site_id = site
          where f.change_no > after
          order by f.change_no limit lim)
    ), page as (
        select * from changes order by change_no limit lim
    )
    select jsonb_build_object(
               'changes', coalesce(jsonb_agg(jsonb_build_object(
                   'kind', kind, 'change_no', change_no, 'row', row) order by change_no),
                   '[]'::jsonb),
               'next', coalesce(max(change_no), after),
               'more', count(*) = lim,
               'server_time', now())
      into result
      from page;
    return result;
end $$;

create function public.push_events(events jsonb)
returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    site uuid := public.facegate_my_site();
    rejected jsonb := '[]'::jsonb;
    ev jsonb;
    inserted integer := 0;
    n integer;
begin
    if dev is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    if jsonb_typeof(events) is distinct from 'array' then
        raise exception using errcode = '22023', message = 'events must be a JSON array';
    end if;
    if jsonb_array_length(events) > 5000 then
        raise exception using errcode = '22023', message = 'at most 5000 events per call';
    end if;
    -- Fast path: the whole batch in one statement. If any row is malformed, fall back to one
    -- row at a time so that the bad rows are named and the good ones still stored.
    begin
        insert into public.access_events
            (id, device_id, site_id, ts, door, kind, person_id, person_name, distance, reason,
             track_id, details)
        select (e ->> 'id')::uuid, dev, site, (e ->> 'ts')::timestamptz, e ->> 'door',
               e ->> 'kind', (e ->> 'person_id')::uuid, e ->> 'person_name',
               (e ->> 'distance')::real, e ->> 'reason', (e ->> 'track_id')::integer,
               nullif(e -> 'details', 'null'::jsonb)
          from jsonb_array_elements(events) e
        on conflict (id) do nothing;
        get diagnostics inserted = row_count;
    exception when others then
        inserted := 0;
        for ev in select e from jsonb_array_elements(events) e loop
            begin
                insert into public.access_events
                    (id, device_id, site_id, ts, door, kind, person_id, person_name, distance,
                     reason, track_id, details)
                values ((ev ->> 'id')::uuid, dev, site, (ev ->> 'ts')::timestamptz,
                        ev ->> 'door', ev ->> 'kind', (ev ->> 'person_id')::uuid,
                        ev ->> 'person_name', (ev ->> 'distance')::real, ev ->> 'reason',
                        (ev ->> 'track_id')::integer, nullif(ev -> 'details', 'null'::jsonb))
                on conflict (id) do nothing;
                get diagnostics n = row_count;
                inserted := inserted + n;
            exception when others then
                if sqlstate in ('40001', '40P01', '55P03', '57014') then
                    raise;                   -- contention, not a bad row: the door retries
                end if;
                rejected := rejected || jsonb_build_array(jsonb_build_object(
                    'id', ev ->> 'id', 'code', sqlstate, 'error', sqlerrm));
            end;
        end loop;
    end;
    return jsonb_build_object('received', jsonb_array_length(events), 'inserted', inserted,
                              'rejected', rejected);
end $$;

create function public.push_people(people jsonb, known_through bigint default 0)
returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    site uuid := public.facegate_my_site();
    p jsonb;
    pid uuid;
    cur public.persons;
    face_ids uuid[];
    accepted jsonb := '[]'::jsonb;
    conflicts jsonb := '[]'::jsonb;
    rejected jsonb := '[]'::jsonb;
begin
    if dev is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    if jsonb_typeof(people) is distinct from 'array' then
        raise exception using errcode = '22023', message = 'people must be a JSON array';
    end if;
    if jsonb_array_length(people) > 1000 then
        raise exception using errcode = '22023', message = 'at most 1000 people per call';
    end if;
    -- The change-number lock before any row lock, in the order every writer takes them.
    perform pg_advisory_xact_lock(7305521001);
    for p in select value from jsonb_array_elements(people) loop
        begin
            pid := (p ->> 'id')::uuid;
            select * into cur from public.persons where id = pid for update;
            if found then
                if not exists (select 1 from public.person_sites ps
                                where ps.person_id = pid and ps.site_id = site) then
                    raise exception using errcode = '42501',
                        message = 'person belongs to another site';
                end if;
                -- The central copy changed since this door last saw it: the centre wins.
                if cur.change_no is distinct from (p ->> 'base_version')::bigint then
                    conflicts := conflicts || jsonb_build_array(jsonb_build_object(
                        'id', pid, 'central_version', cur.change_no));
                    continue;
                end if;
            end if;
            if coalesce((p ->> 'deleted')::boolean, false) then
                if found then
                    update public.persons set deleted = true, updated_by = dev where id = pid;
                end if;
            else
                if (p ->> 'schedule_id') is not null and not exists (
                        select 1 from public.schedules s
                         where s.id = (p ->> 'schedule_id')::uuid and s.site_id = site
                           and not s.deleted) then
                    raise exception using errcode = '23503',
                        message = 'schedule ' || (p ->> 'schedule_id')
                                  || ' is not a central schedule of this site';
                end if;
                face_ids := array(select (x ->> 'id')::uuid
                                    from jsonb_array_elements(coalesce(p -> 'faces', '[]')) x);
                if exists (select 1 from public.faces f
                            where f.id = any(face_ids) and f.person_id <> pid) then
                    raise exception using errcode = '23505',
                        message = 'a face id belongs to another person';
                end if;
                -- Faces the door had already received and no longer has were deleted there;
                -- faces newer than the door's cursor are kept.
                update public.faces set deleted = true
                 where person_id = pid and not deleted and change_no <= coalesce(known_through, 0)
                   and id <> all(face_ids);
                insert into public.persons
                    (id, name, external_id, active, valid_from, valid_until, schedule_id, notes,
                     updated_by)
                values (pid, coalesce(p ->> 'name', ''), p ->> 'external_id',
                        coalesce((p ->> 'active')::boolean, true),
                        (p ->> 'valid_from')::timestamptz, (p ->> 'valid_until')::timestamptz,
                        (p ->> 'schedule_id')::uuid, p ->> 'notes', dev)
                on conflict (id) do update set
                    name = excluded.name, external_id = excluded.external_id,
                    active = excluded.active, valid_from = excluded.valid_from,
                    valid_until = excluded.valid_until, schedule_id = excluded.schedule_id,
                    notes = excluded.notes, updated_by = excluded.updated_by;
                insert into public.person_sites (person_id, site_id) values (pid, site)
                on conflict (person_id, site_id) do update set deleted = false
                 where public.person_sites.deleted;
                insert into public.faces (id, person_id, embedding, model, quality)
                select (x ->> 'id')::uuid, pid,
                       array(select v::real from jsonb_array_elements_text(x -> 'embedding') v),
                       x ->> 'model', (x ->> 'quality')::real
                  from jsonb_array_elements(coalesce(p -> 'faces', '[]')) x
                on conflict (id) do nothing;
            end if;
            accepted := accepted || jsonb_build_array(jsonb_build_object(
                'id', pid,
                'central_version', (select change_no from public.persons where id = pid)));
        exception when others then
            if sqlstate in ('40001', '40P01', '55P03', '57014') then
                raise;                       -- contention, not a bad row: the door retries
            end if;
            rejected := rejected || jsonb_build_array(jsonb_build_object(
                'id', p ->> 'id', 'code', sqlstate, 'error', sqlerrm));
        end;
    end loop;
    return jsonb_build_object('accepted', accepted, 'conflicts', conflicts,
                              'rejected', rejected);
end $$;

create function public.heartbeat(status jsonb default '{}'::jsonb)
returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
    dev uuid := public.facegate_my_device_id();
    site uuid := public.facegate_my_site();
begin
    if dev is null then
        raise exception using errcode = '42501', message = 'not a provisioned device';
    end if;
    if jsonb_typeof(status) is distinct from 'object' then
        raise exception using errcode = '22023', message = 'status must be a JSON object';
    end if;
    insert into public.device_heartbeats (device_id, site_id, ts, status)
    values (dev, site, now(), status)
    on conflict (device_id) do update
        set ts = excluded.ts, status = excluded.status, site_id = excluded.site_id;
    return jsonb_build_object('server_time', now());
end $$;

-- Provisioning, for admins' tools holding the service-role key: the site (created if needed)
-- and the door's device row bound to its Auth user.
create function public.provision_device(site_name text, door_name text, user_id uuid)
returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
    site uuid;
    device uuid;
begin
    insert into public.sites (name) values (site_name) on conflict (name) do nothing;
    select id into site from public.sites where name = site_name;
    if exists (select 1 from public.devices d where d.site_id = site and d.name = door_name) then
        raise exception using errcode = '23505',
            message = format('door %s is already provisioned at site %s', door_name, site_name);
    end if;
    insert into public.devices (site_id, name, auth_user_id)
    values (site, door_name, user_id) returning id into device;
    return jsonb_build_object('site_id', site, 'device_id', device);
end $$;

-- Supabase lets anon and authenticated execute every function in public by default.
revoke all on function public.pull_changes(bigint, integer), public.push_events(jsonb),
    public.push_people(jsonb, bigint), public.heartbeat(jsonb),
    public.provision_device(text, text, uuid), public.facegate_my_device_id(),
    public.facegate_my_site()
    from public, anon, authenticated;
grant execute on function public.pull_changes(bigint, integer), public.push_events(jsonb),
    public.push_people(jsonb, bigint), public.heartbeat(jsonb),
    public.facegate_my_device_id(), public.facegate_my_site()
    to authenticated;
grant execute on function public.provision_device(text, text, uuid),
    public.facegate_my_device_id(), public.facegate_my_site()
    to service_role;

-- Let PostgREST see the new functions now (Supabase also does this by itself after DDL).
notify pgrst, 'reload schema';
